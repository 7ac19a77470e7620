"""The web page at `/`, driven in Chromium against a real `rag serve` over a real index:
what a reader does (ask, read, open the source, copy the citation) and what can go wrong
(index loading, errors, a key, hostile documents, a phone-width window)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import httpx
import pytest
from playwright.sync_api import Page, expect

from .conftest import Server, rag_serve, write_extra_documents

pytestmark = pytest.mark.browser

CAMP = "How far is Camp Ashraf from Baghdad?"
TAPE = "Who leaked the Montazeri audio tape?"
HARBOUR = "What did the harbour master write on the gate of the old harbour?"
NOT_IN_CORPUS = "What is the boiling point of liquid nitrogen in kelvin?"
# Waits that include a query on two CPU cores.
ANSWER_WAIT_MS = 30_000


def api_query(server: Server, question: str, **options) -> dict:
    """What the API itself answers: the page must show exactly this."""
    body = {"question": question, "k": 5, "mode": "hybrid", **options}
    response = httpx.post(f"{server.base}/query", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def ask(page: Page, question: str) -> None:
    box = page.get_by_label("Your question")
    box.fill(question)
    box.press("Enter")


def answer_text(page: Page):
    return page.locator("#answer .answer-text")


def wait_for_passages(page: Page, count: int) -> None:
    expect(page.locator("#hits > li")).to_have_count(count, timeout=ANSWER_WAIT_MS)


def squeeze(text: str) -> str:
    return " ".join(text.split())


def test_the_answer_comes_first_with_its_confidence_and_citation(page: Page, server: Server):
    expected = api_query(server, CAMP)
    answer = expected["answer"]
    assert answer is not None, "the seed corpus answers this question"
    page.goto("/")
    ask(page, CAMP)
    expect(answer_text(page)).to_have_text(squeeze(answer["text"]), timeout=ANSWER_WAIT_MS)
    expect(page.locator("#status")).to_contain_text("Answer found")  # the live region says so
    percent = round(answer["confidence"] * 100)
    expect(page.locator("#answer .confidence")).to_contain_text(f"({percent}% confident)")
    words = "very likely right" if percent >= 80 else "likely right" if percent >= 60 else None
    expect(page.locator("#answer .confidence strong")).to_have_text(  # as the percent reads
        words or "unsure: check the source"
    )
    source = page.locator("#answer button.cite")
    for part in (answer["title"], answer["section"], f"line {answer['line_start']}"):
        expect(source).to_contain_text(part)
    # The answer sits above the passages, and the URL carries the question.
    answer_y = page.locator("#answer").bounding_box()["y"]
    wait_for_passages(page, len(expected["hits"]))
    assert answer_y < page.locator("#passages").bounding_box()["y"]
    assert parse_qs(urlparse(page.url).query) == {"q": [CAMP]}
    # Each card: title, section, lines, the passage; the answer and the question's words marked.
    cards = page.locator("#hits > li")
    for card, hit in zip(cards.all(), expected["hits"], strict=True):
        expect(card.locator(".hit-title")).to_have_text(hit["title"])
        expect(card.locator(".where")).to_contain_text(hit["section"])
        assert squeeze(card.locator(".hit-text").inner_text()) == squeeze(hit["text"])
    answering = cards.nth(answer["rank"] - 1)
    expect(answering.locator("mark.answer-span")).to_have_text(answer["text"])
    words = {w.lower() for w in page.locator("#hits mark.word").all_inner_texts()}
    assert {"camp", "ashraf", "baghdad"} <= words


def test_an_answer_that_is_a_release_heading_shows_the_sentence_under_it(
    page: Page, server: Server
):
    question = "Which Uvicorn version dropped the logger= config setting?"
    expected = api_query(server, question)
    answer, evidence = expected["answer"], expected["answer"]["evidence"]
    assert answer["text"].startswith("0.10.0") and "logger=" in evidence["text"], answer
    page.goto("/")
    ask(page, question)
    expect(answer_text(page)).to_have_text(squeeze(answer["text"]), timeout=ANSWER_WAIT_MS)
    under = page.locator("#answer .evidence")
    expect(under).to_contain_text(squeeze(evidence["text"]))
    expect(under.locator("button.cite")).to_contain_text(f"line {evidence['line_start']}")
    # The passage it came from marks that sentence, and the heading when it holds it.
    wait_for_passages(page, len(expected["hits"]))
    hit = expected["hits"][answer["rank"] - 1]
    card = page.locator("#hits > li").nth(answer["rank"] - 1)
    expect(card.locator("mark.evidence-span")).to_have_text(squeeze(evidence["text"]))
    holds = hit["start_char"] <= answer["start_char"] and answer["end_char"] <= hit["end_char"]
    expect(card.locator("mark.answer-span")).to_have_count(1 if holds else 0)


def test_a_pdf_passage_across_a_page_break_shows_both_pages(page: Page, server: Server):
    question = "When did Microsoft Word become the industry standard word processor?"
    expected = api_query(server, question)
    crossing = [h for h in expected["hits"] if h["page"] and h["page_end"] != h["page"]]
    assert crossing, "multi_page.pdf's passage on Microsoft Word runs from page 1 to 2"
    page.goto("/")
    ask(page, question)
    wait_for_passages(page, len(expected["hits"]))
    for hit in crossing:
        card = page.locator("#hits > li").nth(hit["rank"] - 1)
        expect(card.locator(".where")).to_contain_text(f"pages {hit['page']}–{hit['page_end']}")


def test_a_citation_opens_the_source_at_its_span_and_copies_for_rag_show(
    page: Page, server: Server
):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base)
    expected = api_query(server, CAMP)
    answer = expected["answer"]
    page.goto("/?q=" + quote(CAMP))
    source = page.locator("#answer button.cite")
    source.click(timeout=ANSWER_WAIT_MS)
    viewer = page.get_by_role("dialog")
    expect(viewer).to_be_visible()
    cited = viewer.locator("mark#cited")
    text = server.text_of(answer["doc_id"])
    expect(cited).to_have_text(text[answer["start_char"] : answer["end_char"]])
    expect(cited).to_be_in_viewport()
    expect(viewer.locator("#viewer-stale")).to_be_hidden()
    # Context around it, as the API serves it.
    span = httpx.get(
        f"{server.base}/documents/{answer['doc_id']}/text",
        params={"start": answer["start_char"], "end": answer["end_char"], "context": 1500},
    ).json()
    assert cited.text_content() == span["text"]
    assert span["before"][-200:] in viewer.locator("#viewer-text").text_content()

    viewer.get_by_role("button", name="Copy citation").click()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == f"{answer['doc_id']}:{answer['start_char']}-{answer['end_char']}"
    expect(viewer.locator("#viewer-status")).to_contain_text(f"Copied {copied}")
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("rag")), "show", copied],
        env={
            **os.environ,
            "RAG_CORPUS_DIR": str(server.corpus),
            "RAG_INDEX_DIR": str(server.index_dir),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert squeeze(f"[[{answer['text']}]]") in squeeze(shown.stdout)

    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    expect(source).to_be_focused()
    # A passage's own citation opens the whole passage.
    first = expected["hits"][0]
    page.locator("#hits > li").first.get_by_role("button", name="Open").first.click()
    expect(cited).to_have_text(text[first["start_char"] : first["end_char"]])
    assert cited.text_content() == first["text"]


def test_a_file_changed_since_indexing_is_flagged_when_its_citation_opens(
    page: Page, server: Server
):
    question = "Which survey boat checked the tide table for the northern pier?"
    hit = next(h for h in api_query(server, question)["hits"] if h["doc_id"] == "notes.txt")
    notes = server.corpus / "notes.txt"
    original = notes.read_bytes()
    page.goto("/?q=" + quote(question))
    card = page.locator("#hits > li").nth(hit["rank"] - 1)
    opens = card.locator(".actions button.cite")
    opens.click(timeout=ANSWER_WAIT_MS)
    cited = page.locator("mark#cited")
    expect(cited).to_have_text(hit["text"])
    stale = page.locator("#viewer-stale")
    expect(stale).to_be_hidden()
    page.keyboard.press("Escape")
    try:
        notes.write_bytes(original + b"A line added after indexing.\n")
        opens.click()
        expect(stale).to_be_visible()
        expect(stale).to_contain_text("Changed since indexed")
        expect(cited).to_have_text(hit["text"])  # appended: the cited span did not move
    finally:
        notes.write_bytes(original)


def test_a_question_the_corpus_does_not_answer_says_so_and_marks_the_closest(
    page: Page, server: Server
):
    expected = api_query(server, NOT_IN_CORPUS)
    assert expected["answerable"] is False and expected["answer"] is None
    page.goto("/?q=" + quote(NOT_IN_CORPUS))
    heading = page.locator("#answer h2")
    expect(heading).to_have_text("Not found in the documents", timeout=ANSWER_WAIT_MS)
    expect(page.locator("#answer")).to_contain_text("do not seem to answer")
    expect(page.locator("#status")).to_contain_text("Not found in the documents")
    expect(page.locator("#answer .answer-text")).to_have_count(0)
    wait_for_passages(page, len(expected["hits"]))
    expect(page.locator("#passages-heading")).to_have_text("Closest passages (not answers)")
    expect(page.locator("#hits > li.closest")).to_have_count(len(expected["hits"]))
    for label in page.locator("#hits .closest-label").all():
        expect(label).to_have_text("Closest passage: not an answer")
    expect(page.locator("mark.answer-span")).to_have_count(0)


def test_corpus_markup_is_shown_as_text_and_never_runs(page: Page, server: Server):
    expected = api_query(server, HARBOUR)
    hostile = [h for h in expected["hits"] if "untrusted" in h["doc_id"]]
    assert hostile, "the hostile document must be among the hits for this test to mean much"
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/?q=" + quote(HARBOUR))
    wait_for_passages(page, len(expected["hits"]))
    card = page.locator("#hits > li").nth(hostile[0]["rank"] - 1)
    text = card.locator(".hit-text").text_content()
    assert "<script>window.__xss=1</script>" in text
    assert '<img src=x onerror="window.__xss=1">' in text
    assert "&amp;" in text  # entities are not decoded either
    # The other copy comes back as "also in" (one id has a slash and a space), openable.
    place = hostile[0]["also_in"][0]
    assert {hostile[0]["doc_id"], place["doc_id"]} == {"untrusted.txt", "mirror/untrusted copy.txt"}
    also = card.locator(".also-in")
    expect(also).to_contain_text(f"also in: {place['doc_id']}")
    also.get_by_role("button").first.click()
    cited = page.locator("mark#cited")
    expect(cited).to_have_text(
        server.text_of(place["doc_id"])[place["start_char"] : place["end_char"]]
    )
    assert "<script>" in page.locator("#viewer-text").text_content()
    page.keyboard.press("Escape")
    page.mouse.move(300, 400)  # over the cards, where an onmouseover would fire
    # Nothing from the corpus became an element, and nothing ran.
    assert page.evaluate("() => window.__xss") is None
    assert page.evaluate("() => document.querySelectorAll('script').length") == 1  # app.js
    assert page.evaluate("() => document.querySelectorAll('main img, main b').length") == 0
    assert (
        page.evaluate("() => [...document.querySelectorAll('[onerror], [onmouseover]')].length")
        == 0
    )
    assert errors == []


def test_the_index_loading_then_the_answer_then_the_server_gone(page: Page, tmp_path: Path):
    """A server started on a corpus with no index yet builds it while the page waits:
    the page says it is loading, retries, and shows the answer when the index is ready."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_extra_documents(corpus)
    question = "Which survey boat checked the tide table for the northern pier?"
    with rag_serve(
        corpus,
        tmp_path / "index",
        tmp_path / "server.log",
        wait_ready=False,
        RAG_FAST_QUERIES="false",  # no ONNX export: the build only embeds
    ) as server:
        assert httpx.get(f"{server.base}/ready").status_code == 503
        page.goto(f"{server.base}/?q={quote(question)}")
        status = page.locator("#status")
        expect(status).to_contain_text("Loading the index", timeout=10_000)
        expect(status).to_contain_text("not ready")  # the server's own words, one line
        expect(answer_text(page)).to_contain_text("Kestrel", timeout=180_000)
        expect(status).not_to_contain_text("Loading")
        assert httpx.get(f"{server.base}/ready").status_code == 200
    # The server stopped: one line that says what to check.
    ask(page, "Who counted the mooring rings?")
    expect(status).to_have_text(
        "Cannot reach the server: check that `rag serve` is running.", timeout=10_000
    )
    expect(page.locator("#answer")).to_be_hidden()


def test_a_failed_load_shows_its_reason_not_loading(page: Page, tmp_path: Path):
    """A server whose index cannot load (no document in its folder) is not "loading": the
    page shows the server's one line and does not retry."""
    corpus = tmp_path / "empty"
    corpus.mkdir()
    with rag_serve(corpus, tmp_path / "index", tmp_path / "server.log", wait_ready=False) as server:
        _wait_failed(server.base)
        page.goto(f"{server.base}/?q={quote(CAMP)}")
        status = page.locator("#status")
        expect(status).to_contain_text("no readable document", timeout=10_000)
        expect(status).not_to_contain_text("Loading")
        expect(page.locator("#answer")).to_be_hidden()


def _wait_failed(base: str, seconds: float = 60) -> None:
    """Until /ready reports a problem other than loading."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = httpx.get(f"{base}/ready").json()
        if "loading" not in body.get("problem", "loading"):
            return
        time.sleep(0.2)
    raise AssertionError("the server kept loading")


@pytest.mark.parametrize(
    "query",
    [{"k": "99"}, {"mode": "fuzzy"}, {"q": "x" * 2100}, {"q": "   "}],
    ids=["k-over-50", "unknown-mode", "question-too-long", "blank-question"],
)
def test_bad_input_is_one_line_from_the_server(page: Page, server: Server, query: dict):
    params = {"q": CAMP, **query}
    page.goto("/?" + "&".join(f"{k}={quote(v)}" for k, v in params.items()))
    body = {
        "question": params["q"],
        "k": params.get("k", "5"),
        "mode": params.get("mode", "hybrid"),
    }
    response = httpx.post(f"{server.base}/query", json=body, timeout=30)
    assert 400 <= response.status_code < 500
    status = page.locator("#status.error")
    expect(status).to_have_text(response.json()["detail"], timeout=ANSWER_WAIT_MS)
    assert "\n" not in status.inner_text() and "Traceback" not in status.inner_text()
    expect(page.locator("#answer")).to_be_hidden()


def test_keyboard_only(page: Page, server: Server):
    expected = api_query(server, CAMP, mode="bm25", k=3)
    assert expected["answer"] is not None
    page.goto("/")
    expect(page.get_by_label("Your question")).to_be_focused()  # ready to type at load
    page.keyboard.type(CAMP)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Ask")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Search by")).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Search by")).to_have_value("bm25")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Passages to show")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("3")
    page.keyboard.press("Enter")
    expect(answer_text(page)).to_have_text(
        squeeze(expected["answer"]["text"]), timeout=ANSWER_WAIT_MS
    )
    wait_for_passages(page, 3)
    assert parse_qs(urlparse(page.url).query) == {"q": [CAMP], "mode": ["bm25"], "k": ["3"]}
    page.keyboard.press("Tab")  # from the passages box to the answer's citation
    source = page.locator("#answer button.cite")
    expect(source).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("mark#cited")).to_have_text(expected["answer"]["text"])
    expect(page.get_by_role("dialog").get_by_role("button", name="Close")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(source).to_be_focused()


def test_deep_link_and_back_and_forward(page: Page, server: Server):
    first = api_query(server, CAMP)["answer"]["text"]
    second = api_query(server, TAPE)
    page.goto("/?q=" + quote(CAMP))
    expect(answer_text(page)).to_have_text(squeeze(first), timeout=ANSWER_WAIT_MS)
    ask(page, TAPE)
    if second["answer"] is not None:
        expect(answer_text(page)).to_have_text(
            squeeze(second["answer"]["text"]), timeout=ANSWER_WAIT_MS
        )
    else:
        expect(page.locator("#answer h2")).to_have_text("Not found in the documents")
    assert parse_qs(urlparse(page.url).query) == {"q": [TAPE]}
    page.go_back()
    expect(answer_text(page)).to_have_text(squeeze(first))
    expect(page.get_by_label("Your question")).to_have_value(CAMP)
    assert parse_qs(urlparse(page.url).query) == {"q": [CAMP]}
    page.go_forward()
    expect(page.get_by_label("Your question")).to_have_value(TAPE)
    # Mode and k travel in the link too.
    page.goto("/?q=" + quote(CAMP) + "&mode=dense&k=2")
    expect(page.get_by_label("Search by")).to_have_value("dense")
    expect(page.get_by_label("Passages to show")).to_have_value("2")
    wait_for_passages(page, 2)


def test_an_api_key_is_asked_once_and_kept_for_the_tab_only(page: Page, server: Server, tmp_path):
    with rag_serve(
        server.corpus,
        server.index_dir,
        tmp_path / "keyed.log",
        RAG_API_KEY="k3y",
        RAG_API_KEY_ALL_ROUTES="true",
    ) as keyed:
        assert httpx.get(f"{keyed.base}/query", params={"q": CAMP}).status_code == 401
        page.goto(f"{keyed.base}/?q={quote(CAMP)}")
        key = page.get_by_label("API key")
        expect(key).to_be_visible(timeout=ANSWER_WAIT_MS)
        expect(key).to_have_attribute("type", "password")
        expect(key).to_be_focused()
        expect(page.locator("#status")).to_have_text("This server needs an API key.")
        key.fill("wrong")
        key.press("Enter")
        expect(page.locator("#status")).to_contain_text("refused", timeout=ANSWER_WAIT_MS)
        key.fill("k3y")
        key.press("Enter")
        expect(answer_text(page)).to_contain_text("77 kilometers", timeout=ANSWER_WAIT_MS)
        expect(key).to_be_hidden()
        # Later calls carry it without asking again: a citation opens.
        page.locator("#answer button.cite").click()
        expect(page.locator("mark#cited")).to_contain_text("77 kilometers")
        page.keyboard.press("Escape")
        ask(page, TAPE)
        wait_for_passages(page, 5)
        expect(key).to_be_hidden()
        stored = page.evaluate(
            "() => [sessionStorage.getItem('rag.apiKey'), localStorage.length, document.cookie]"
        )
        assert stored == ["k3y", 0, ""]
        # Another tab has its own session: it asks again.
        other = page.context.new_page()
        other.goto(f"{keyed.base}/?q={quote(CAMP)}")
        expect(other.get_by_label("API key")).to_be_visible(timeout=ANSWER_WAIT_MS)
        other.close()


def test_phone_width_has_no_horizontal_scroll(page: Page, server: Server):
    page.set_viewport_size({"width": 375, "height": 812})
    scrolls = "() => document.documentElement.scrollWidth > document.documentElement.clientWidth"
    for question in (CAMP, HARBOUR, NOT_IN_CORPUS):
        page.goto("/?q=" + quote(question))
        wait_for_passages(page, 5)
        assert not page.evaluate(scrolls), question
        assert page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)") >= 16
    page.locator("#hits button.cite").first.click()
    viewer = page.get_by_role("dialog")
    expect(viewer.locator("mark#cited")).to_be_in_viewport()
    box = viewer.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    assert not page.evaluate(scrolls)


def test_text_contrast_is_at_least_4_5_to_1(page: Page, server: Server):
    """WCAG AA for every kind of text the page shows, from the colours Chromium computes."""
    page.goto("/?q=" + quote(CAMP))
    wait_for_passages(page, 5)
    ratios = page.evaluate(
        """() => {
      const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
      const lum = ([r, g, b]) => {
        const f = (v) => {
          v /= 255;
          return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (el) => {
        for (; el; el = el.parentElement) {
          const c = rgb(getComputedStyle(el).backgroundColor);
          if (c.length < 4 || c[3] > 0) return c.slice(0, 3);
        }
        return [255, 255, 255];
      };
      const out = {};
      const selectors = ['h1', '.lede', 'label', '#status', '.answer-text', '.confidence',
        'button.cite', 'button[type=submit]', '.where', '.hit-text', 'mark.word',
        'mark.answer-span', '.bottom'];
      for (const s of selectors) {
        const el = document.querySelector(s);
        if (!el) { out[s] = null; continue; }
        const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
        out[s] = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      }
      return out;
    }"""
    )
    low = {s: r for s, r in ratios.items() if r is None or r < 4.5}
    assert not low, low


def test_time_to_first_paint_over_the_api_call(
    page: Page, server: Server, capsys: pytest.CaptureFixture
):
    """From the API's response to the answer on screen, per question: the page's own cost.
    Measured twice: by the page (the paint after rendering) and by Chromium's Element
    Timing of the answer."""
    questions = [
        CAMP,
        TAPE,
        "When did the 1988 massacre of political prisoners happen?",
        "How many residents died at Camp Ashraf?",
        "Who verified Amnesty International's statement?",
        NOT_IN_CORPUS,
        "Where was the MEK relocated to from Camp Ashraf?",
        "What did the harbour master write?",
    ]
    page.goto("/")
    page.evaluate(
        """() => {
      window.answerPaints = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.answerPaints.push(e.renderTime || e.loadTime);
      }).observe({ type: 'element', buffered: true });
    }"""
    )
    rows = []
    for question in questions:
        page.evaluate("() => { window.ragTiming = null; window.answerPaints = []; }")
        ask(page, question)
        page.wait_for_function(
            "() => window.ragTiming && window.answerPaints.length", timeout=ANSWER_WAIT_MS
        )
        timing = page.evaluate("() => ({...window.ragTiming, element: window.answerPaints[0]})")
        rows.append((timing["api_ms"], timing["paint_ms"], timing["element"] - timing["arrived"]))
    painted = [r[1] for r in rows]
    element = [r[2] for r in rows]
    with capsys.disabled():  # the number the issue asks for, shown in every run
        print(
            "\nanswer on screen after the API response, ms "
            "(API call, page-measured, element timing)"
        )
        for question, (api, by_page, by_element) in zip(questions, rows, strict=True):
            print(f"  {api:7.1f} {by_page:7.1f} {by_element:7.1f}  {question}")
        print(
            f"  median {statistics.median(painted):.1f} / {statistics.median(element):.1f}, "
            f"max {max(painted):.1f} / {max(element):.1f}"
        )
    # The budget: the page adds under 50 ms to a query's time to first paint. The
    # median, because other processes share these two cores: a single question can be
    # delayed by a busy neighbour (the first, cold one is also the slowest: see the table).
    assert statistics.median(painted) < 50 and statistics.median(element) < 50, rows


def test_screenshots_desktop_and_phone(page: Page, server: Server, tmp_path: Path):
    """The README's pictures, taken from the real page: written under tmp_path, and into
    $SCREENSHOTS_DIR when set (`make screenshots` sets it to docs/)."""
    targets = [tmp_path]
    if os.environ.get("SCREENSHOTS_DIR"):
        targets.append(Path(os.environ["SCREENSHOTS_DIR"]))
    shots = {"page-desktop": (1280, 800), "page-phone": (375, 812), "page-source": (1280, 800)}
    for name, (width, height) in shots.items():
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/?q=" + quote(CAMP))
        wait_for_passages(page, 5)
        if name == "page-source":
            page.locator("#answer button.cite").click()
            expect(page.locator("mark#cited")).to_be_in_viewport()
        page.locator("#q").blur()
        png = page.screenshot()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert (int.from_bytes(png[16:20]), int.from_bytes(png[20:24])) == (width, height)
        for folder in targets:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.png").write_bytes(png)
