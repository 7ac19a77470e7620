"""PDFs through pypdfium2 (PDFium, the engine of Chrome's viewer), page by page: each page
is loaded, read and closed in turn, so a long PDF never sits in memory whole, only its
text. Words split by a hyphen at a line end are joined; running heads and feet (a title and
page number repeated in the page margins) are dropped; the PDF's outline (its bookmarks),
where it has one, gives the sections. Where each page starts is kept: citations carry the
page."""

from __future__ import annotations

import functools
import math
import re
from difflib import SequenceMatcher
from typing import Any, BinaryIO

from rag.readers.base import Extracted, TextBuilder, Unreadable, without_controls

# Fewer characters a page than this on average, and images: scanned pages without a text
# layer. A page or two of short text and no images ("EXAMPLE", a form's labels) is read.
MIN_CHARS_PER_PAGE = 20
_IMAGE_PAGES_LOOKED_AT = 50
# The letters before a line-end hyphen (any script; the last one a lower-case ASCII letter,
# as before) and the first letter after it.
_HYPHENATED = re.compile(r"([^\W\d_]*[a-z])[-\u00ad\x02]\n([a-z])")
# PDFium marks a hyphen it took for a line-end break with U+FFFE (bench/EXTRACTION.md): a
# split word between lower-case letters ("exam\ufffeple"), a real compound elsewhere
# ("FAA\ufffeapproved").
_SPLIT_WORD = re.compile(r"([^\W\d_]*[a-z])\ufffe(?=[a-z])")


# Running heads and feet sit in the top and bottom MARGIN of the page height, and repeat on
# pages nearby (within NEARBY pages either side, on at least REPEATS of them: books alternate
# a verso and a recto head, and a chapter's head changes with the chapter), give or take a
# few letters (SIMILAR: OCR reads "VICKSBURG" as "VICKSBUEG" on one page). A line of the
# body near the top of several pages ("(4) In the Operating Procedures chapter,") is in no
# margin; a line in a margin that repeats nowhere (a title page's heading) is kept.
MARGIN = 0.08
NEARBY = 4
REPEATS = 2
SHARE = 0.4
SIMILAR = 0.8
_MIN_LETTERS = 4  # fewer: a page number, a date, a stray glyph; compared by _PAGE_NUMBER
_PAGE_NUMBER = re.compile(r"^[\W_]*(?:\d{1,4}|[ivxlcdm]{1,7})[\W_]*$", re.IGNORECASE)
_EDGE_LINES = 3  # a running line is looked for among a page's first and last lines


def _joined(fragment: str) -> str:
    """A line-end fragment as it joins the next line: with its hyphen when it is a compound's
    first word ("d-dimensional", "self-publishing": hyphenation leaves at least two letters
    of a cut word, and "self" is written hyphenated), else without ("exam-ple")."""
    return f"{fragment}-" if len(fragment) == 1 or fragment.lower() == "self" else fragment


def _page_text(raw: str) -> str:
    text = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = _SPLIT_WORD.sub(lambda m: _joined(m.group(1)), text).replace("\ufffe", "-")
    text = _HYPHENATED.sub(lambda m: _joined(m.group(1)) + m.group(2), text)
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


# A web address that a line end cut: after its "://", "=", "?", "&" or "%", or after a "/",
# ".", "-", "_" or "#" when the next line goes on in lower case, digits or "%" ("entries/" +
# "78691781-c9b7"), not before a capital or a bracket ("regulations.gov." + "Follow",
# "hutter1.net/" + "[HZRS15]": the address had ended).
_URL_SCHEME_CUT = re.compile(r"https?://(?:\S*[=?&%])?$")
_URL_CUT = re.compile(r"https?://\S*[/.\-_#]$")
_GOES_ON = re.compile(r"[a-z0-9%]")
_URL_CHARS = 500  # the longest address looked for at a line end


def _reflow(paragraph: str) -> str:
    """A paragraph's lines joined by spaces: a PDF breaks lines where the page is full, not
    where a sentence or an item ends, and a sentence cut in two lines is two fragments to
    the sentence splitter (and to the answer spans: "AOA sensor system test ........" on
    one line, its "$248,200." on the next). A web address cut at a line end is joined
    without a space."""
    out = ""
    for line in (line.strip() for line in paragraph.splitlines()):
        if not line:
            continue
        tail = out[-_URL_CHARS:]  # not the whole paragraph again at every line
        cut = _URL_SCHEME_CUT.search(tail) or (_URL_CUT.search(tail) and _GOES_ON.match(line))
        out += line if not out or cut else " " + line
    return out


# The outline: a bookmark ("III-A Google DeepDream") names a heading line of the page it
# points to ("A. Google DeepDream"), numbered its own way; the words after the numbering
# match, in full or at the end ("Appendix A: Automatically generated Texts" over
# "AUTOMATICALLY GENERATED TEXTS"), when the shorter is at least _HEADING_SHARE of the
# longer. A line ending like a sentence ("synthesization.") is no heading.
_NUMBERING = re.compile(r"^(?:[IVXLCDM]+|[A-Z]|\d+)(?:[-.](?:[IVXLCDM]+|[A-Z]|\d+))*[.):]?\s+")
_HEADING_SHARE = 0.6
_MAX_BOOKMARKS = 10_000  # an outline is a table of contents, not a second document


def _has_images(pdf: Any) -> bool:
    """Whether the first pages hold an image (inside a form too): what a scan is made of."""
    import pypdfium2 as pdfium

    for number in range(min(len(pdf), _IMAGE_PAGES_LOOKED_AT)):
        page = pdf[number]
        try:
            if any(True for _ in page.get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE])):
                return True
        finally:
            page.close()
    return False


def _outline(pdf: Any) -> dict[int, list[tuple[int, str]]]:
    """The PDF's bookmarks by the page they point to: (depth, title), in outline order. An
    outline that cannot be read is none: the text does not depend on it."""
    import pypdfium2 as pdfium

    by_page: dict[int, list[tuple[int, str]]] = {}
    try:
        for n, mark in enumerate(pdf.get_toc()):
            if n >= _MAX_BOOKMARKS:
                break
            dest = mark.get_dest()
            index = dest.get_index() if dest is not None else None
            title = " ".join(without_controls(mark.get_title()).split())
            if index is not None and title:
                by_page.setdefault(index, []).append((mark.level, title))
    except (pdfium.PdfiumError, ValueError, OSError, UnicodeError):
        return {}
    return by_page


def _names(line: str, title: str) -> bool:
    """Whether a line of a page is the heading a bookmark's title names."""
    line = line.strip()
    if not line or line.endswith((".", ",", ";", ":")) or len(line) > 2 * len(title) + 8:
        return False
    a, b = _key(_NUMBERING.sub("", line)), _key(_NUMBERING.sub("", title))
    short, long = sorted((a, b), key=len)
    return (
        len(short) >= _MIN_LETTERS
        and len(short) >= _HEADING_SHARE * len(long)
        and long.endswith(short)
    )


def _add_page(out: TextBuilder, text: str, marks: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """A page's paragraphs, and its outline's headings where they stand (each found after
    the one before it); returns the bookmarks not found, which may head the next page (a
    bookmark often points at the page above its heading)."""
    lines = text.split("\n")
    heads: dict[int, int] = {}  # line -> depth
    missed = []
    at = 0
    for depth, title in marks:
        found = next((i for i in range(at, len(lines)) if _names(lines[i], title)), None)
        if found is None:
            missed.append((depth, title))
        else:
            heads[found], at = depth, found + 1
    segment: list[str] = []
    for i, line in enumerate([*lines, ""]):
        if i in heads or i == len(lines):
            for paragraph in re.split(r"\n\s*\n", "\n".join(segment)):
                out.content(_reflow(paragraph))  # a PDF marks no paragraphs but by blank lines
            segment = []
            if i in heads:
                out.heading(heads[i] + 1, line)
        else:
            segment.append(line)
    return missed


def _letters(line: str) -> str:
    return "".join(c for c in line.lower() if c.isalpha())


def _key(line: str) -> str:
    return "".join(c for c in line.lower() if c.isalnum())


def _margin_lines(page: Any, textpage: Any) -> list[str]:
    """The lines of text in the page's top and bottom margins, wherever PDFium's reading
    order puts them in the page's text (a foot is often read first)."""
    width, height = page.get_size()
    bands = (
        textpage.get_text_bounded(0, height * (1 - MARGIN), width, height),
        textpage.get_text_bounded(0, 0, width, height * MARGIN),
    )
    return [line.strip() for band in bands for line in band.splitlines() if line.strip()]


def _form(line: str) -> str:
    """What a margin line keeps from page to page: its letters, or "#" for a page number."""
    return "#" if _PAGE_NUMBER.match(line) else _letters(line)


def _running(margins: list[list[str]]) -> list[set[str]]:
    """Per page, the keys of its margin lines that are running heads or feet: similar to a
    margin line on at least REPEATS, and SHARE, of the other pages within NEARBY pages. A
    dense table's rows reach into the margins too, and a row like another ("Boeing Company
    Long Beach") is on a page or two nearby, not on most."""
    forms = [[_form(line) for line in page] for page in margins]
    similar = functools.cache(_similar)  # a line meets the same lines again, page after page
    out: list[set[str]] = []
    for number, page in enumerate(margins):
        near = [n for n in range(number - NEARBY, number + NEARBY + 1) if 0 <= n < len(margins)]
        needed = max(REPEATS, math.ceil(SHARE * (len(near) - 1)))
        found = set()
        for line, form in zip(page, forms[number], strict=True):
            if form != "#" and len(form) < _MIN_LETTERS:
                continue
            repeats = sum(
                any(similar(*sorted((form, other))) for other in forms[n])
                for n in near
                if n != number
            )
            if repeats >= needed:
                found.add(_key(line))
        out.append(found)
    return out


def _similar(a: str, b: str) -> bool:
    # difflib, not a fuzzy-matching dependency: a few lines a page, compared with a few
    # pages' lines. The length bound (the ratio can be no higher) rules out most pairs
    # before a matcher is built, which costs more than the comparison.
    if a == b:
        return True
    if 2 * min(len(a), len(b)) < SIMILAR * (len(a) + len(b)):
        return False
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return matcher.quick_ratio() >= SIMILAR and matcher.ratio() >= SIMILAR


def _without_running(text: str, running: set[str]) -> str:
    """The page's text without its running lines, looked for among its first and last
    _EDGE_LINES lines only: the same words further in are the body's."""
    if not running:
        return text
    lines = text.split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    edges = set(filled[:_EDGE_LINES] + filled[-_EDGE_LINES:])
    kept = [line for i, line in enumerate(lines) if i not in edges or _key(line) not in running]
    return "\n".join(kept).strip()


def read_pdf(source: bytes | BinaryIO) -> Extracted:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(source)
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            raise Unreadable("encrypted", "the PDF needs a password to open") from None
        raise Unreadable("broken", f"PDFium cannot open it ({message})") from None
    texts, margins = [], []
    try:
        for number in range(len(pdf)):
            page = pdf[number]
            textpage = page.get_textpage()
            texts.append(_page_text(textpage.get_text_range()))
            margins.append(_margin_lines(page, textpage))
            textpage.close()
            page.close()
        outline = _outline(pdf)
        title = str(pdf.get_metadata_dict().get("Title", "") or "").strip()
        if re.search(r"\.\w{2,4}$", title):  # "Binder1.pdf": a file name, not a title
            title = ""
        pages = len(pdf)
        chars = sum(len(text.strip()) for text in texts)
        scanned = chars < MIN_CHARS_PER_PAGE * max(1, pages) and _has_images(pdf)
    finally:
        pdf.close()
    if scanned:
        raise Unreadable(
            "no text layer",
            f"{pages} page(s), {chars} characters of text: scanned images (OCR is off)",
        )
    if not chars:
        raise Unreadable("no text", f"{pages} page(s) without text or images")
    out = TextBuilder()
    starts: list[int] = []
    missed: list[tuple[int, str]] = []
    for number, (text, running) in enumerate(zip(texts, _running(margins), strict=True)):
        starts.append(out.page_break())
        own = outline.get(number, [])
        missed = _add_page(out, _without_running(text, running), missed + own)
        missed = [mark for mark in missed if mark in own]  # one page further, no more
    return out.build(title, page_starts=tuple(starts))
