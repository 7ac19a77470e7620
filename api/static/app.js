// The page behind `/`: asks POST /query, shows the answer first, then the passages, and
// opens a citation from GET /documents/{id}/text. The corpus is untrusted text: every
// string from the server goes into the page as a text node (append / textContent), never
// as HTML.
(() => {
  "use strict";

  const KEY_HEADER = "X-API-Key"; // api/deps.py
  const KEY_STORE = "rag.apiKey"; // sessionStorage only: gone when the tab closes
  const DEFAULTS = { mode: "hybrid", k: "5" };
  const TIMEOUT_MS = 60000;
  const RETRY_MS = 1000;
  const CONTEXT_CHARS = 1500;
  // Words too common to be worth highlighting in a passage.
  const STOPWORDS = new Set(
    ("a an and are as at be by can did do does for from had has have how in is it its of on " +
      "or that the their there this to was were what when where which who whom whose why " +
      "will with").split(" ")
  );

  const $ = (id) => document.getElementById(id);
  const form = $("ask-form");
  const keyForm = $("key-form");
  const status = $("status");
  const answerBox = $("answer");
  const passages = $("passages");
  const viewer = $("viewer");

  const answered = new Map(); // URL query string -> response: back/forward re-render at once
  let latest = 0; // the question on screen; answers to older ones are dropped
  let rendering = 0; // the answer on screen; its passages follow a frame later
  let retryTimer = 0;
  let pendingAsk = null; // what to ask again once a key is given
  let opener = null; // the button that opened the viewer, focused again on close
  let viewerCitation = "";

  /** An element with attributes and children; strings become text nodes, never HTML. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "onclick") node.addEventListener("click", value);
      else if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function setStatus(text, kind) {
    status.textContent = text;
    status.className = "status" + (kind ? " " + kind : "");
  }

  /** The server's `detail` as one line: no stack trace, no HTML. */
  async function detailOf(response) {
    let detail = "";
    try {
      const body = await response.json();
      detail = body && body.detail;
      if (Array.isArray(detail)) detail = detail.map((d) => (d && d.msg) || String(d)).join("; ");
    } catch (_) {
      detail = "";
    }
    detail = String(detail || `HTTP ${response.status} ${response.statusText}`.trim());
    detail = detail.replace(/\s+/g, " ").trim();
    return detail.length > 300 ? detail.slice(0, 299) + "…" : detail;
  }

  /** fetch with the session's API key and a deadline; throws Error with a readable line. */
  async function call(path, init) {
    const headers = new Headers((init && init.headers) || {});
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) headers.set(KEY_HEADER, key);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
    try {
      return await fetch(path, { ...init, headers, signal: abort.signal });
    } catch (err) {
      if (err && err.name === "AbortError") {
        throw new Error(`The server did not answer within ${TIMEOUT_MS / 1000} s: try again.`);
      }
      throw new Error("Cannot reach the server: check that `rag serve` is running.");
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- the URL: /?q=...&mode=...&k=... ----

  function paramsFromUrl() {
    const url = new URLSearchParams(location.search);
    return {
      q: url.get("q") || "",
      mode: url.get("mode") || DEFAULTS.mode,
      k: url.get("k") || DEFAULTS.k,
    };
  }

  function queryString(params) {
    const url = new URLSearchParams({ q: params.q });
    if (params.mode !== DEFAULTS.mode) url.set("mode", params.mode);
    if (params.k !== DEFAULTS.k) url.set("k", params.k);
    return "?" + url.toString();
  }

  function fillForm(params) {
    $("q").value = params.q;
    $("mode").value = params.mode;
    $("k").value = params.k;
  }

  function paramsFromForm() {
    return { q: $("q").value.trim(), mode: $("mode").value, k: String($("k").value).trim() };
  }

  // ---- asking ----

  async function ask(params) {
    const id = ++latest;
    clearTimeout(retryTimer);
    const key = queryString(params);
    if (answered.has(key)) {
      render(answered.get(key), params);
      return;
    }
    setStatus("Searching…", "busy");
    document.body.setAttribute("aria-busy", "true");
    let response;
    try {
      const sent = performance.now();
      response = await call("/query", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question: params.q, k: params.k || null, mode: params.mode }),
      });
      const arrived = performance.now();
      if (id !== latest) return;
      if (response.status === 503 && response.headers.get("Retry-After") !== null) {
        // The index (or the model) is still loading: say so, and ask again shortly. A 503
        // without Retry-After is a load that failed: its one line shows, below.
        showLoading(await detailOf(response));
        retryTimer = setTimeout(() => {
          if (id === latest) ask(params);
        }, RETRY_MS);
        return;
      }
      if (response.status === 401) {
        needKey(params);
        return;
      }
      if (!response.ok) {
        clearResults();
        setStatus(await detailOf(response), "error");
        return;
      }
      const body = await response.json();
      if (id !== latest) return;
      answered.set(key, body);
      render(body, params);
      timePaint(sent, arrived);
    } catch (err) {
      if (id !== latest) return;
      clearResults();
      setStatus(err.message, "error");
    } finally {
      if (id === latest) document.body.removeAttribute("aria-busy");
    }
  }

  /** Runs `fn` just after the next paint: the callback of a message posted from
   * requestAnimationFrame runs once that frame is on screen. */
  function afterPaint(fn) {
    requestAnimationFrame(() => {
      const channel = new MessageChannel();
      channel.port1.onmessage = fn;
      channel.port2.postMessage(null);
    });
  }

  /** Records how long after the API's response the answer was on screen (the browser
   * tests read it: the page must add under 50 ms to the API call). */
  function timePaint(sent, arrived) {
    const rendered = performance.now();
    afterPaint(() => {
      window.ragTiming = {
        api_ms: arrived - sent,
        render_ms: rendered - arrived,
        paint_ms: performance.now() - arrived,
        arrived,
      };
      document.dispatchEvent(new CustomEvent("rag:painted"));
    });
  }

  function showLoading(detail) {
    clearResults();
    setStatus("", "");
    status.className = "status loading";
    status.append(
      el("strong", null, "Loading the index… "),
      "The answer will appear here as soon as the server is ready (retrying every second).",
      el("span", { class: "detail" }, ` Server: ${detail}`)
    );
  }

  function needKey(params) {
    pendingAsk = params;
    const hadKey = sessionStorage.getItem(KEY_STORE) !== null;
    sessionStorage.removeItem(KEY_STORE);
    clearResults();
    setStatus(
      hadKey ? "That API key was refused: enter the right one." : "This server needs an API key.",
      "error"
    );
    keyForm.hidden = false;
    $("api-key").value = "";
    $("api-key").focus();
  }

  function clearResults() {
    rendering++;
    answerBox.hidden = true;
    answerBox.replaceChildren();
    passages.hidden = true;
    $("hits").replaceChildren();
  }

  // ---- rendering ----

  /** The question's words as one case-insensitive regular expression, or null. */
  function wordPattern(question) {
    const words = [...new Set((question.toLowerCase().match(/[\p{L}\p{N}]+/gu) || []))]
      .filter((w) => !STOPWORDS.has(w) && (w.length > 2 || /\p{N}/u.test(w)))
      .sort((a, b) => b.length - a.length)
      .map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    if (!words.length) return null;
    return new RegExp(`(?<![\\p{L}\\p{N}])(?:${words.join("|")})(?![\\p{L}\\p{N}])`, "giu");
  }

  /** Appends `text` to `parent`, the question's words in <mark class="word">. */
  function appendWords(parent, text, pattern) {
    if (!pattern) {
      parent.append(text);
      return;
    }
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      parent.append(text.slice(last, match.index), el("mark", { class: "word" }, match[0]));
      last = match.index + match[0].length;
    }
    parent.append(text.slice(last));
  }

  /** A passage with the answer (code-point offsets, as the server counts) and words marked;
   * when the answer is a heading, also the sentence under it that the answer rests on. */
  function passageText(hit, answer, pattern) {
    const box = el("p", { class: "hit-text" });
    const points = Array.from(hit.text);
    const inside = (q) =>
      q && q.doc_id === hit.doc_id && hit.start_char <= q.start_char && q.end_char <= hit.end_char;
    const quotes = [
      [answer, "answer-span", "the answer"],
      [answer && answer.evidence, "evidence-span", "what the answer rests on"],
    ]
      .filter(([q]) => inside(q))
      .map(([q, cls, title]) => [q.start_char - hit.start_char, q.end_char - hit.start_char, cls, title])
      .sort((x, y) => x[0] - y[0]);
    let at = 0;
    for (const [from, to, cls, title] of quotes) {
      if (from < at) continue; // overlapping: the first one stays marked
      appendWords(box, points.slice(at, from).join(""), pattern);
      const mark = el("mark", { class: cls, title });
      appendWords(mark, points.slice(from, to).join(""), pattern);
      box.append(mark);
      at = to;
    }
    appendWords(box, points.slice(at).join(""), pattern);
    return box;
  }

  function lines(loc) {
    const l = loc.line_start === loc.line_end ? `line ${loc.line_start}` : `lines ${loc.line_start}–${loc.line_end}`;
    if (!loc.page) return l;
    const p = loc.page_end && loc.page_end !== loc.page ? `pages ${loc.page}–${loc.page_end}` : `page ${loc.page}`;
    return `${p}, ${l}`;
  }

  function citation(loc) {
    return `${loc.doc_id}:${loc.start_char}-${loc.end_char}`;
  }

  // Words from the percentage shown, so that "80% confident" never reads "likely right".
  function confidenceWords(percent) {
    if (percent >= 80) return "very likely right";
    if (percent >= 60) return "likely right";
    return "unsure: check the source";
  }

  function citeButton(loc, title, label) {
    return el(
      "button",
      {
        type: "button",
        class: "cite",
        "aria-label": `Open ${title}, ${lines(loc)}, at the cited text`,
        onclick: (event) => openCitation(loc, title, event.currentTarget),
      },
      label
    );
  }

  function copyButton(loc) {
    return el(
      "button",
      {
        type: "button",
        class: "copy quiet",
        "aria-label": `Copy citation ${citation(loc)}`,
        onclick: () => copyCitation(citation(loc)),
      },
      "Copy citation"
    );
  }

  function renderAnswer(body) {
    const answer = body.answer;
    answerBox.replaceChildren();
    if (answer) {
      const where = `${answer.title} § ${answer.section}, ${lines(answer)}`;
      answerBox.className = "answer found";
      answerBox.append(
        el("h2", { id: "answer-heading" }, "Answer"),
        el("p", { class: "answer-text", elementtiming: "answer" }, answer.text.replace(/\s+/g, " ").trim()),
        el(
          "p",
          { class: "confidence" },
          el("strong", null, confidenceWords(Math.round(answer.confidence * 100))),
          ` (${Math.round(answer.confidence * 100)}% confident)`
        ),
        el("p", { class: "source" }, "From ", citeButton(answer, answer.title, where), " ", copyButton(answer))
      );
      if (answer.evidence) {
        // The answer is the heading (a release's version and date) this sentence sits under.
        const under = answer.evidence;
        answerBox.append(
          el(
            "p",
            { class: "evidence" },
            "Under it: ",
            el("q", null, under.text.replace(/\s+/g, " ").trim()),
            " ",
            citeButton(under, answer.title, lines(under))
          )
        );
      }
    } else if (body.answerable === false) {
      answerBox.className = "answer none";
      answerBox.append(
        el("h2", { id: "answer-heading", elementtiming: "answer" }, "Not found in the documents"),
        el(
          "p",
          null,
          body.hits.length
            ? "The documents do not seem to answer this question. The closest passages are below, marked as such: none of them is an answer."
            : "The documents do not seem to answer this question, and no passage comes close."
        )
      );
    } else {
      answerBox.hidden = true;
      return;
    }
    answerBox.hidden = false;
  }

  function renderHit(hit, body, pattern) {
    const closest = body.answerable === false;
    const title = hit.title || hit.doc_id;
    const card = el("li", { class: closest ? "hit closest" : "hit" });
    if (closest) card.append(el("p", { class: "closest-label" }, "Closest passage: not an answer"));
    card.append(
      el("h3", { class: "hit-title" }, title),
      el("p", { class: "where" }, el("span", { class: "section" }, `§ ${hit.section}`), ` · ${lines(hit)}`),
      passageText(hit, body.answer, pattern)
    );
    if (hit.also_in && hit.also_in.length) {
      const also = el("p", { class: "also-in" }, "also in: ");
      hit.also_in.forEach((place, i) => {
        if (i) also.append(", ");
        also.append(citeButton(place, place.doc_id, `${place.doc_id} (${lines(place)})`));
      });
      if (hit.also_in_more) also.append(` and ${hit.also_in_more} more`);
      card.append(also);
    }
    card.append(
      el(
        "div",
        { class: "actions" },
        citeButton(hit, title, `Open in document: ${hit.doc_id}, ${lines(hit)}`),
        copyButton(hit)
      )
    );
    return card;
  }

  /** The answer first, painted on its own; the passages follow in the next frame. */
  function render(body, params) {
    const shown = ++rendering;
    keyForm.hidden = true;
    fillForm(params);
    document.title = `${body.question} · rag`;
    renderAnswer(body);
    passages.hidden = true;
    // The live region says what came back, for readers who cannot see it appear.
    const n = body.hits.length;
    const found = `${n} passage${n === 1 ? "" : "s"} in ${Math.round(body.took_ms)} ms.`;
    if (body.answer) setStatus(`Answer found, ${confidenceWords(body.answer.confidence)}; ${found}`, "");
    else if (body.answerable === false && n) setStatus(`Not found in the documents; the closest ${found}`, "");
    else setStatus(n ? found : "No passage found.", "");
    afterPaint(() => {
      if (shown !== rendering) return; // another answer came meanwhile
      const pattern = wordPattern(body.question);
      $("passages-heading").textContent =
        body.answerable === false ? "Closest passages (not answers)" : "Passages";
      $("hits").replaceChildren(...body.hits.map((hit) => renderHit(hit, body, pattern)));
      passages.hidden = !n;
    });
  }

  // ---- citations ----

  function docPath(docId) {
    return docId.split("/").map(encodeURIComponent).join("/");
  }

  async function openCitation(loc, title, button) {
    opener = button;
    viewerCitation = citation(loc);
    $("viewer-title").textContent = title;
    $("viewer-where").textContent = `${loc.doc_id} · ${lines(loc)} · characters ${loc.start_char}–${loc.end_char}`;
    $("viewer-stale").hidden = true;
    $("viewer-text").replaceChildren();
    $("viewer-status").textContent = "Opening the document…";
    $("viewer-status").className = "status busy";
    if (!viewer.open) viewer.showModal();
    const url =
      `/documents/${docPath(loc.doc_id)}/text?` +
      new URLSearchParams({ start: loc.start_char, end: loc.end_char, context: CONTEXT_CHARS });
    try {
      const response = await call(url);
      if (viewerCitation !== citation(loc)) return;
      if (response.status === 401) {
        viewer.close();
        needKey(paramsFromUrl());
        return;
      }
      if (!response.ok) {
        $("viewer-status").textContent = await detailOf(response);
        $("viewer-status").className = "status error";
        return;
      }
      showSpan(await response.json());
    } catch (err) {
      $("viewer-status").textContent = err.message;
      $("viewer-status").className = "status error";
    }
  }

  function showSpan(span) {
    const box = $("viewer-text");
    const lead = span.start - span.before.length > 0 ? "…" : "";
    const tail = span.end + span.after.length < span.chars ? "…" : "";
    const mark = el("mark", { class: "cited", id: "cited" }, span.text);
    box.replaceChildren(el("span", { class: "context" }, lead + span.before), mark, el("span", { class: "context" }, span.after + tail));
    $("viewer-stale").hidden = !span.stale;
    $("viewer-status").textContent = "";
    $("viewer-status").className = "status";
    mark.scrollIntoView({ block: "center" });
  }

  /** Copies `doc_id:start-end` (what `rag show` takes), saying so where the reader looks. */
  async function copyCitation(text) {
    const where = viewer.open ? $("viewer-status") : status;
    try {
      await navigator.clipboard.writeText(text);
      where.textContent = `Copied ${text} (rag show ${text} prints it in a terminal).`;
    } catch (_) {
      // No clipboard (a page not served from localhost or https): show it to copy by hand.
      where.textContent = `Citation: ${text} (select and copy it).`;
    }
    where.className = "status";
  }

  // ---- events ----

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = paramsFromForm();
    if (!params.q) {
      setStatus("Type a question first.", "error");
      return;
    }
    const search = queryString(params);
    if (search !== location.search) history.pushState(null, "", "/" + search);
    ask(params);
  });

  keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value;
    if (!key) return;
    sessionStorage.setItem(KEY_STORE, key);
    $("api-key").value = "";
    keyForm.hidden = true;
    if (pendingAsk && pendingAsk.q) ask(pendingAsk);
    else setStatus("Key saved for this tab.", "");
    $("q").focus();
  });

  window.addEventListener("popstate", () => {
    const params = paramsFromUrl();
    fillForm(params);
    if (params.q) ask(params);
    else {
      latest++;
      clearTimeout(retryTimer);
      clearResults();
      setStatus("", "");
    }
  });

  $("viewer-close").addEventListener("click", () => viewer.close());
  $("viewer-copy").addEventListener("click", () => copyCitation(viewerCitation));
  viewer.addEventListener("close", () => {
    viewerCitation = "";
    if (opener && opener.isConnected) opener.focus();
  });

  // A deep link (/?q=...) asks at once.
  const initial = paramsFromUrl();
  fillForm(initial);
  if (initial.q) ask(initial);
  else $("q").focus();
})();
