"""Text extraction from the real documents, candidate readers side by side, before the project
picks its readers: speed (best of 3, beside a raw byte read in the same run), what each library
keeps or loses, and which files fail and how. Prints Markdown and writes bench/EXTRACTION.md.

Usage: .venv/bin/python bench/extraction.py [CORPUS]   (default ../shared/corpora/realdocs)"""

import json
import logging
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from logging.handlers import BufferingHandler
from pathlib import Path
from typing import Any

import docx
import lxml.html
import pypdfium2 as pdfium
import trafilatura
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml.ns import qn
from docx.table import Table
from markdown_it import MarkdownIt
from mdit_py_plugins.front_matter import front_matter_plugin
from pypdf import PdfReader
from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3
EMPTY_PAGE = 20  # a page with fewer non-space characters has, in practice, no text layer
MOJIBAKE = re.compile("Ã[\u0080-\u00bf]|â€|Â[\u00a0-\u00bf]")
BOILER = re.compile(  # lines that are site furniture, not the document
    r"(?i)\b(cookies?|subscribe|sign (in|up)|log ?in|newsletter|privacy policy|terms of (use|"
    r"service)|advertisement|all rights reserved|follow us|skip to|share this|menu)\b"
)
CHARSET = re.compile(rb"""charset\s*=\s*["']?([\w-]+)""", re.I)
NAV = "//nav|//header|//footer|//aside|//*[@role='navigation']"
SUMMARY: list[list[Any]] = []
PYPDF_LOG = BufferingHandler(1 << 30)  # pypdf's log warnings: its only sign of a repaired file
logging.getLogger("pypdf").addHandler(PYPDF_LOG)
logging.getLogger("pypdf").propagate = False


def best_of(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """Least of REPEATS wall times (the run least disturbed by the machine) and the result; on
    an exception, the exception in place of the result (its time means nothing)."""
    best, out = float("inf"), None
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        try:
            out = fn(*args)
        except Exception as exc:  # noqa: BLE001 - failures are what is being measured
            return float("nan"), exc
        best = min(best, time.perf_counter() - t0)
    return best, out


def norm(text: str) -> str:
    """Case- and whitespace-insensitive form, for looking answers up."""
    return " ".join(text.split()).casefold()


def fmt(x: Any) -> Any:
    """3 significant digits, no exponent above 1000 (a column mixing '-' and numbers is text)."""
    if not isinstance(x, float) or x != x:
        return "-" if isinstance(x, float) else x
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def table(rows: Iterable[Iterable[Any]], headers: str) -> str:
    """A GitHub Markdown table; headers as one "a|b|c" string."""
    body = [[fmt(x) for x in row] for row in rows]
    return tabulate(body, headers.split("|"), tablefmt="github", disable_numparse=True)


def summarize(kind: str, reader: str, ok: str, nbytes: int, s: float, rate: str = "") -> None:
    SUMMARY.append([kind, reader, ok, nbytes / 1e6, s, nbytes / 1e6 / s, rate])


def raw_read(kind: str, files: list[Path]) -> int:
    """The baseline: reading the bytes, nothing else (warm page cache). Returns the bytes."""
    s, n = sum(best_of(f.read_bytes)[0] for f in files), len(files)
    nbytes = sum(f.stat().st_size for f in files)
    summarize(kind, "raw read", f"{n}/{n}", nbytes, s)
    return nbytes


def answers(corpus: Path, kind: str, texts: dict[str, dict[str, str]], page: bool = False) -> str:
    """Is an answer string of each question on this format in each reader's text of its doc
    (texts: reader -> doc_id, or doc_id#page, -> text)?"""
    rows, qs = [], map(json.loads, (corpus.parent / "realdocs_questions.jsonl").open())
    for q in (q for q in qs if q["format"] == kind and q["answers"]):
        key = q["doc_ids"][0] + (f"#{q['page']}" if page else "")
        hits = [any(norm(a) in norm(t.get(key, "")) for a in q["answers"]) for t in texts.values()]
        rows.append([q["id"], key, q["answers"][0], *hits])
    return table(rows, "question|doc|answer|" + "|".join(texts))


def pdfium_pages(path: Path) -> list[str]:
    with pdfium.PdfDocument(path) as pdf:  # closes the document; pages and textpages by GC
        return [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]


def pdf_quality(pages: list[str]) -> list[Any]:
    """What a reader must repair: empty pages, line-end hyphens, ligatures, undecodable glyphs."""
    full, n = "\n".join(pages), len(pages)
    empty = sum(len("".join(p.split())) < EMPTY_PAGE for p in pages)
    garbage = len(re.findall(r"[\x00-\x08\x0b\x0c\x0e-\x1f]|/g\d+", full))
    status = ["no text layer" if empty == n else f"{empty} empty page(s)"] if empty else []
    status += [f"{garbage} garbage chars"] if garbage else []
    hyphens = len(re.findall(r"[A-Za-z]-[ \t]*\r?\n\s*[a-z]", full))
    ligatures = len(re.findall("[\ufb00-\ufb06]", full))
    chars = len("".join(full.split()))
    return [chars, f"{empty}/{n}", hyphens, full.count("\ufffe"), ligatures, "; ".join(status)]


def pdf_report(corpus: Path) -> list[str]:
    """pypdfium2 against pypdf per file: speed, failures, empty pages, hyphenation, garbage."""
    files = sorted((corpus / "pdf").glob("*.pdf"))
    libs = {
        "pypdfium2": pdfium_pages,
        "pypdf": lambda p: [x.extract_text() for x in PdfReader(p).pages],
    }
    texts: dict[str, dict[str, str]] = {lib: {} for lib in libs}
    speed, quality, tot = [], [], {lib: [0, 0.0, 0, 0] for lib in libs}  # ok, s, bytes, pages
    for f in files:
        size, row, notes = f.stat().st_size, [f.name, f.stat().st_size / 1e6], ""
        for lib, fn in libs.items():
            PYPDF_LOG.buffer.clear()
            s, out = best_of(fn, f)
            if logs := PYPDF_LOG.buffer:
                notes = f"pypdf logs {len(logs) // REPEATS}x, e.g. {logs[-1].getMessage()}"
            if isinstance(out, Exception):
                row += ["-", "-", "-"]
                msg = f"{type(out).__name__}: {out}".replace("|", "/")
                quality.append([f.name, lib, "-", "-", "-", "-", "-", "FAILS " + msg])
                continue
            texts[lib].update({f"pdf/{f.name}#{i + 1}": t for i, t in enumerate(out)})
            quality.append([f.name, lib, *pdf_quality(out)])
            row += [len(out), s, len(out) / s]
            tot[lib] = [a + b for a, b in zip(tot[lib], (1, s, size, len(out)), strict=True)]
        speed.append([*row, notes])
    raw_read("pdf", files)
    for lib, (ok, s, b, n) in tot.items():
        summarize("pdf", lib, f"{ok}/{len(files)}", b, s, f"{n / s:.0f} pages/s")
    return [
        "## PDF: pypdfium2 vs pypdf",
        table(speed, "file|MB|pages|pdfium s|pdfium pages/s|pages|pypdf s|pypdf pages/s|notes"),
        "Quality. `-\\n`: words broken by a line-end hyphen; U+FFFE: pdfium's mark for one (word "
        "joined, mark left in); ligatures: U+FB00-FB06; garbage: control chars, `/gNN` glyphs.",
        table(quality, "file|library|non-space chars|empty pages|-\\n|U+FFFE|ligatures|status"),
        "Answers (case-insensitive, whitespace-normalized) in the text of the stated page:",
        answers(corpus, "pdf", texts, page=True),
    ]


def traf(raw: bytes, out: str, c: bool = True) -> str:
    """output_format="markdown" turns include_formatting on by itself."""
    return (
        trafilatura.extract(raw, output_format=out, include_tables=True, include_comments=c) or ""
    )


def html_report(corpus: Path) -> list[str]:
    """trafilatura (txt, markdown) against lxml text_content(): kept text, boilerplate, charset."""
    files = sorted((corpus / "html").glob("*.html"))
    readers: dict[str, Callable[[bytes], str]] = {
        "lxml.html text_content()": lambda b: lxml.html.fromstring(b).text_content(),
        "trafilatura txt": lambda b: traf(b, "txt"),
        "trafilatura markdown": lambda b: traf(b, "markdown"),
    }
    texts: dict[str, dict[str, str]] = {r: {} for r in readers}
    rows, charsets, tot, agg = [], Counter[str](), dict.fromkeys(readers, 0.0), Counter()
    for f in files:
        raw = f.read_bytes()
        charsets.update(m.decode().lower() for m in CHARSET.findall(raw[:4096])[:1])
        tree = lxml.html.fromstring(raw)
        navs = {norm(t) for el in tree.xpath(NAV) for t in el.itertext() if len(norm(t)) >= 12}
        for el in tree.xpath("//script|//style|//noscript|//template"):
            el.drop_tree()
        visible = len(norm(tree.text_content()))
        stripped = CHARSET.sub(b"", raw)  # the same page, had no charset been declared
        for name, fn in readers.items():
            s, out = best_of(fn, raw)
            tot[name] += s
            texts[name][f"html/{f.name}"], text = out, norm(out)
            lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
            bare = traf(raw, name.split()[-1], False) if name[:4] == "traf" else out
            c = {
                "boilerplate": sum(bool(BOILER.search(ln)) for ln in lines),
                "nav": sum(t in text for t in navs),
                "# lines": sum(ln.startswith("#") for ln in lines),
                "\\ escapes": len(re.findall(r"\\[_*\[\]#`]", out)),
                "comments": len(out) - len(bare),
            }
            agg.update({(name, k): v for k, v in c.items()})
            moji = [len(MOJIBAKE.findall(t)) for t in (out, fn(stripped))]
            rows.append([f.name, name, s, len(raw) / 1e6 / s, len(text), len(text) / visible])
            rows[-1] += [*c.values(), *moji]
    n, nbytes = len(files), raw_read("html", files)
    for name, s in tot.items():
        summarize("html", name, f"{n}/{n}", nbytes, s, f"{n / s:.0f} files/s")
    return [
        "## HTML: trafilatura vs lxml text_content()",
        f"Declared charsets (first `charset=` in the first 4 KB): {dict(charsets)}. Each reader "
        "gets the bytes and decodes them itself. trafilatura: include_tables=True, defaults "
        "otherwise (include_comments=True). Totals over all files:",
        table([[r, *(agg[r, k] for k in c)] for r in readers], "reader|" + "|".join(c)),
        "share: chars kept / visible text (outside script/style; text_content() keeps those, "
        "hence >1); boilerplate: lines matching cookie/subscribe/sign in/menu/...; nav: strings "
        "(>=12 chars) of nav/header/footer/aside kept; \\ escapes: e.g. `\\_`; comments: chars "
        "include_comments=False drops; mojibake ('Ã©'): as given, and with charset= removed.",
        table(rows, "file|reader|s|MB/s|chars|share|" + "|".join(c) + "|mojibake|no charset"),
        "Answers found in the output:",
        answers(corpus, "html", texts),
    ]


def md_report(corpus: Path) -> list[str]:
    """markdown-it-py: parse speed and what the token stream gives a reader (maps, structure)."""
    files = sorted((corpus / "md").glob("*.md"))
    md = MarkdownIt("commonmark").enable("table").use(front_matter_plugin)
    c, no_map, texts, parse_s = Counter[str](), Counter[str](), {}, 0.0
    for f in files:
        src = f.read_text(encoding="utf-8")
        s, tokens = best_of(md.parse, src)
        parse_s += s
        texts[f"md/{f.name}"] = "\n".join(t.content for t in tokens)
        c["admonitions (/// x, !!! x)"] += len(re.findall(r"^ *(/{3,}|!!!) *[A-Za-z]", src, re.M))
        c["code includes {* file *}"] += len(re.findall(r"^ *\{\*.*\*\}", src, re.M))
        for t in tokens:
            c[t.type] += 1
            c["blocks"] += t.block
            c["with map"] += t.block and t.map is not None
            c["opening"] += t.block and t.nesting >= 0
            no_map[t.type] += t.block and t.nesting >= 0 and t.map is None
            anchor = t.type == "inline" and re.search(r"\{\s*#[\w-]+\s*\}\s*$", t.content)
            c["headings with { #anchor }"] += bool(anchor)
    nbytes = raw_read("md", files)
    summarize("md", "markdown-it-py", f"{len(files)}/{len(files)}", nbytes, parse_s)
    no_map, keys = +no_map, "heading_open fence code_block table_open html_block front_matter"
    counts = [
        ["block tokens with .map", f"{c['with map']}/{c['blocks']} (closing never have)"],
        ["opening/self-closing with .map", f"{c['opening'] - no_map.total()}/{c['opening']}"],
        ["opening without .map, by type", dict(no_map)],
        *[[k, c[k]] for k in keys.split() + [k for k in c if " " in k and "map" not in k]],
    ]
    return [
        f"## Markdown: markdown-it-py (commonmark + table + front_matter), {len(files)} files",
        table(counts, "what|count"),
        "Answers found in the tokens' .content (inline, fence, html_block, front_matter):",
        answers(corpus, "md", {"markdown-it-py": texts}),
    ]


def docx_read(path: Path) -> dict[str, Any]:
    """Body blocks in document order; style names through one dict built from the styles part
    (paragraph.style.name looks the style up anew on every call)."""
    doc = docx.Document(path)
    names = {s.style_id: s.name for s in doc.styles}
    default = doc.styles.default(WD_STYLE_TYPE.PARAGRAPH).name
    out: dict[str, Any] = {"text": [], "styles": Counter[str](), "tables": 0, "numbered": 0}
    for block in doc.iter_inner_content():
        if isinstance(block, Table):
            out["tables"] += 1
            for row in block.rows:  # a merged cell comes back once per grid column it spans
                cells = list({id(c._tc): c for c in row.cells}.values())
                out["text"].append(" | ".join(c.text for c in cells))
        else:
            out["text"].append(block.text)
            out["styles"][names.get(block._p.style, default)] += 1
            out["numbered"] += block._p.pPr is not None and block._p.pPr.numPr is not None
    out["w:t"] = sum(len("".join((t.text or "").split())) for t in doc.element.body.iter(qn("w:t")))
    return out


def docx_report(corpus: Path) -> list[str]:
    """python-docx: speed, structure (headings, tables, lists), text coverage, answers."""
    files = sorted((corpus / "docx").glob("*.docx"))
    rows, texts, tot_s, words = [], {}, 0.0, 0
    for f in files:
        s, out = best_of(docx_read, f)
        style_s = best_of(lambda p: [x.style.name for x in docx.Document(p).paragraphs], f)[0]
        text = texts[f"docx/{f.name}"] = "\n".join(out["text"])
        tot_s, words = tot_s + s, words + len(text.split())
        st: Counter[str] = out["styles"]
        heads = sum(v for k, v in st.items() if k.startswith("Heading"))
        lists = sum(v for k, v in st.items() if "List" in k)
        coverage = len("".join(text.split())) / max(1, out["w:t"])
        rows.append([f.name, f.stat().st_size / 1e6, s, f.stat().st_size / 1e6 / s, style_s])
        rows[-1] += [st.total(), heads, out["tables"], lists, out["numbered"], len(text.split())]
        rows[-1] += [coverage]
    nbytes = raw_read("docx", files)
    summarize(
        "docx",
        "python-docx",
        f"{len(files)}/{len(files)}",
        nbytes,
        tot_s,
        f"{words / tot_s:,.0f} words/s",
    )
    return [
        "## DOCX: python-docx",
        "s: open + body in document order + style names via a dict; style s: open + "
        "`paragraph.style.name` of each paragraph; numbered: with w:numPr; coverage: non-space "
        "chars extracted / those of all w:t in the body (cell separators ' | ' add to it).",
        table(
            rows, "file|MB|s|MB/s|style s|paragraphs|headings|tables|List|numbered|words|coverage"
        ),
        "Answers found in paragraphs + tables text:",
        answers(corpus, "docx", {"python-docx": texts}),
    ]


def ours(corpus: Path) -> None:
    """rag's own readers (rag.readers.extract: the library plus the sections, lists, tables
    and pages rag keeps), a row per format beside the library's raw extraction."""
    from rag.readers import READERS, Unreadable, extract

    for kind, suffixes in (
        ("pdf", (".pdf",)),
        ("html", (".html", ".htm")),
        ("md", (".md",)),
        ("docx", (".docx",)),
    ):
        files = sorted(p for p in corpus.rglob("*") if p.suffix.lower() in suffixes)
        files = [p for p in files if p.name != "SOURCES.md" and p.suffix.lower() in READERS]
        seconds, ok, nbytes, pages = 0.0, 0, 0, 0
        for path in files:
            data = path.read_bytes()
            s, out = best_of(extract, path, data)
            if isinstance(out, Unreadable):
                continue
            seconds, ok, nbytes = seconds + s, ok + 1, nbytes + len(data)
            pages += len(out.page_starts)
        rate = f"{pages / seconds:,.0f} pages/s" if pages else ""
        summarize(kind, "rag.readers (ours)", f"{ok}/{len(files)}", nbytes, seconds, rate)


def whole_folder(corpus: Path) -> list[str]:
    """The whole folder as `rag index` reads it (rag.reading.read_documents): in this
    process, in worker processes, and again with the extraction cache filled, each run
    once, in the same run; peak memory of the reading process beside it."""
    import resource
    import tempfile

    from rag.corpus import list_document_files
    from rag.reading import default_workers, read_documents

    logging.getLogger("rag").setLevel(logging.ERROR)  # the skipped files' warnings
    stamps = list_document_files(corpus)
    nbytes = sum(s.size for s in stamps)
    rows = []
    with tempfile.TemporaryDirectory() as cache_home:
        runs = [
            ("in this process", 1, None),
            (f"{default_workers()} worker processes", None, None),
            (f"{default_workers()} workers, extraction cache cold", None, Path(cache_home)),
            ("extraction cache warm (a rebuild)", None, Path(cache_home)),
        ]
        for label, workers, cache in runs:
            t0 = time.perf_counter()
            docs = list(read_documents(stamps, corpus, cache, workers))
            seconds = time.perf_counter() - t0
            rows.append([label, len(docs), nbytes / 1e6, seconds, nbytes / 1e6 / seconds])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [
        "## The whole folder, as `rag index` reads it",
        f"{len(stamps)} files, {nbytes / 1e6:.1f} MB; one run each, in this order; this "
        f"process's peak memory over the whole bench {peak:,.0f} MB (a PDF is read a page at "
        "a time from the open file).",
        table(rows, "reading|files|MB|s|MB/s"),
    ]


def main() -> None:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".." / "shared/corpora/realdocs"
    corpus = corpus.resolve()
    if not corpus.is_dir():
        print(f"bench/extraction.py: no corpus at {corpus}; pass the realdocs folder")
        return
    sections = [*pdf_report(corpus), *html_report(corpus), *md_report(corpus)]
    sections += docx_report(corpus)
    ours(corpus)
    sections += whole_folder(corpus)
    SUMMARY.sort(key=lambda row: ["pdf", "html", "md", "docx"].index(row[0]))
    shown = os.path.relpath(corpus, ROOT)
    head = f"Corpus `{shown}`. Seconds: best of {REPEATS} runs per file, summed; the raw read "
    head += "(read_bytes, warm cache) in the same run. MB/s over the files a reader did not fail."
    summary = table(SUMMARY, "format|reader|ok files|MB|s|MB/s|rate")
    report = "\n\n".join(["# Text extraction from the realdocs corpus", head, summary, *sections])
    print(report)
    (ROOT / "bench" / "EXTRACTION.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
