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
from collections.abc import Callable
from dataclasses import dataclass
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


# Running heads and feet sit in the top and bottom MARGIN of the page (its outermost
# BAND_LINES lines there), and repeat on pages nearby (within NEARBY pages either side, on at
# least REPEATS and SHARE of them: books alternate a verso and a recto head, and a chapter's
# head changes with the chapter), the same but for a page number at either end and a few
# letters (SIMILAR: OCR reads "VICKSBURG" as "VICKSBUEG" on one page); every other figure
# in them the same ("Edition 1.0 2004-06") or counting up with the pages ("Frm 00002" on page
# 2, "Frm 00003" on page 3). A line of the body near the top of several pages
# ("(4) In the Operating Procedures chapter,") is in no margin; a table row in a margin
# differs from the next page's in its figures ("Person01 ... 2020-01-01"); a line in a
# margin that repeats nowhere (a title page's heading) is kept. A page number standing alone
# is one when the pages nearby have theirs, counting up with the pages.
MARGIN = 0.08
BAND_LINES = 4
NEARBY = 4
REPEATS = 2
SHARE = 0.4
SIMILAR = 0.8
_MIN_LETTERS = 4  # fewer: a stray glyph, a cell; only page numbers are told apart by less
_FUZZY_LETTERS = 120  # longer lines are compared exactly: a head is short
# A page number: digits, or a roman numeral written as one ("xiv", not "civil" or "did"),
# alone or after a short label ("ST-2", "MS-13").
_ROMAN = r"m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})(?<=[ivxlcdm])"
_NUMERAL = rf"(?:\d{{1,6}}|{_ROMAN})"
_PAGE_NUMBER = re.compile(
    rf"^[\W_]*(?:([a-z]{{1,4}})[-\u2010\u2011.\s]\s?)?(\d{{1,6}}|{_ROMAN})[\W_]*$", re.IGNORECASE
)
_END_NUMBERS = re.compile(rf"^[\W_]*{_NUMERAL}\b|\b{_NUMERAL}[\W_]*$", re.IGNORECASE)
_FIGURES = 40  # figures compared in a line
_EDGE_LINES = 6  # a running line is looked for among a page's first and last lines


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


# A web address that a line end cut: after its "://", "=", "?", "&", "%" or "#", or after a
# "/", ".", "-" or "_" when the next line's first word goes on like an address, in lower
# case, digits or "%" and with a digit or one of "/.-_=?&#%" in it ("entries/" +
# "78691781-c9b7", "fsb/" + "aircraft/draft_docs/"); not before a capital, a bracket or a
# plain word ("regulations.gov." + "Follow", "hutter1.net/" + "[HZRS15]", "tool/" + "under
# the MIT license": the address had ended).
_URL_SCHEME_CUT = re.compile(r"https?://(?:\S*[=?&%#])?$")
_URL_CUT = re.compile(r"https?://\S*[/.\-_]$")
_GOES_ON = re.compile(r"[a-z0-9%]\S*[\d/.\-_=?&#%]|\d")
_URL_CHARS = 500  # the longest address looked for at a line end
# A reference's or footnote's number opening the next line ("pubmed/15496625." + "3. Cooper
# DS", "DPR." + "2 For"): the address had ended.
_MARKER = re.compile(r"\d{1,3}[.)]?(?:\s|$)")


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
        cut = _URL_SCHEME_CUT.search(tail) or (
            _URL_CUT.search(tail) and _GOES_ON.match(line) and not _MARKER.match(line)
        )
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
_MARKS_PER_PAGE = 200  # bookmarks looked for on one page
_HEADING_CHARS = 200


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


def _heading_key(line: str) -> str:
    """A heading's words without its numbering, as bookmarks and pages are compared; none
    for a line that ends like a sentence ("synthesization.")."""
    line = line.strip()
    return "" if line.endswith((".", ",", ";", ":")) else _key(_NUMBERING.sub("", line))


def _names(line: str, title: str) -> bool:
    """Whether a line's heading key is the one a bookmark's title names (keys as
    `_heading_key` gives them)."""
    if not line or not title:
        return False
    short, long = sorted((line, title), key=len)
    return (
        len(short) >= _MIN_LETTERS
        and len(short) >= _HEADING_SHARE * len(long)
        and long.endswith(short)
    )


def _add_page(
    out: TextBuilder, text: str, carried: list[tuple[int, str]], own: list[tuple[int, str]]
) -> list[tuple[int, str]]:
    """A page's paragraphs, and its outline's headings where they stand (each found after
    the one before it): the bookmarks `carried` from the page before, then its `own`.
    Returns its own bookmarks not found, which may head the next page (a bookmark often
    points at the page above its heading); those carried are not carried further."""
    lines = text.split("\n")
    # A heading is a short line: longer ones are not compared (nor keyed).
    keys = [_heading_key(line) if len(line) <= _HEADING_CHARS else "" for line in lines]
    heads: dict[int, int] = {}  # line -> depth
    missed = []
    at = 0
    for j, (depth, title) in enumerate([*carried, *own][:_MARKS_PER_PAGE]):
        wanted = _heading_key(title)
        # The line that is the title first (not a running head that ends like it: "Thyroid
        # Carcinoma" over "Papillary Thyroid Carcinoma"), else one that names it.
        found = next((i for i in range(at, len(lines)) if wanted and keys[i] == wanted), None)
        if found is None:
            found = next((i for i in range(at, len(lines)) if _names(keys[i], wanted)), None)
        if found is None:
            if j >= len(carried):
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
    """The outermost lines of text in the page's margins (top and bottom as it is shown:
    the left and right of its crop box when it is turned a quarter), wherever PDFium's
    reading order puts them in the page's text (a foot is often read first)."""
    left, bottom, right, top = page.get_cropbox()
    if page.get_rotation() in (90, 270):
        side = (right - left) * MARGIN
        bands = [(left, bottom, left + side, top), (right - side, bottom, right, top)]
    else:
        side = (top - bottom) * MARGIN
        bands = [(left, top - side, right, top), (left, bottom, right, bottom + side)]
    first, last = (
        [line.strip() for line in textpage.get_text_bounded(*band).splitlines() if line.strip()]
        for band in bands
    )
    return first[:BAND_LINES] + last[-BAND_LINES:]


@dataclass(frozen=True)
class _Margin:
    """A margin line as it is compared across pages."""

    key: str  # what is dropped from the page's text when it runs
    letters: str
    figures: tuple[int, ...]  # the numbers inside it, a page number at either end aside
    label: str | None  # a page number standing alone: its prefix ("ST" of "ST-2"), or None
    page_number: int | None  # that page number (None: roman)


def _margin(line: str) -> _Margin:
    alone = _PAGE_NUMBER.match(line)
    if alone:
        number = alone.group(2)
        label = (alone.group(1) or "").lower()
        page = int(number) if number.isdigit() else None
        return _Margin(_key(line), "", (), label, page)
    inner = _END_NUMBERS.sub(" ", line)
    figures = tuple(int(n) for n in re.findall(r"\d+", inner)[:_FIGURES])
    return _Margin(_key(line), _letters(inner), figures, None, None)


def _runs_with(a: _Margin, b: _Margin, apart: int, similar: Callable[[str, str], bool]) -> bool:
    """Whether margin line `a` and margin line `b` of a page `apart` pages after are the
    same running line: a page number counting up with the pages, or the same words with
    the same figures but those that count up with the pages ("Frm 00002" on page 2)."""
    if a.label is not None or b.label is not None:
        if a.label != b.label:
            return False
        if a.page_number is None or b.page_number is None:
            return a.key != b.key  # roman numbers: a different one on each page
        return b.page_number - a.page_number == apart
    if len(a.figures) != len(b.figures) or any(
        x != y and y - x != apart for x, y in zip(a.figures, b.figures, strict=True)
    ):
        return False
    return _same(a, b, similar)


def _same(a: _Margin, b: _Margin, similar: Callable[[str, str], bool]) -> bool:
    """Whether two margin lines have the same words, but for a few misread letters."""
    if len(a.letters) < _MIN_LETTERS:
        return False
    if a.letters == b.letters:
        return True
    # Misread letters are few: the two start or end alike (which rules out most pairs of
    # body lines before the costly comparison).
    alike = a.letters[:3] == b.letters[:3] or a.letters[-3:] == b.letters[-3:]
    return (
        alike
        and max(len(a.letters), len(b.letters)) <= _FUZZY_LETTERS
        and similar(*sorted((a.letters, b.letters)))
    )


def _running(margins: list[list[str]]) -> list[set[str]]:
    """Per page, the keys of its margin lines that are running heads or feet: the same as a
    margin line on at least REPEATS, and SHARE, of the other pages within NEARBY pages. The
    first of each is kept (a table's column titles repeated atop every page are said once),
    a page number never."""
    lines = [[_margin(line) for line in page] for page in margins]
    similar = functools.cache(_similar)  # a line meets the same lines again, page after page
    out: list[set[str]] = []
    kept: list[_Margin] = []
    for number, page in enumerate(lines):
        near = [n for n in range(number - NEARBY, number + NEARBY + 1) if 0 <= n < len(lines)]
        needed = max(REPEATS, math.ceil(SHARE * (len(near) - 1)))
        found = set()
        for line in page:
            repeats = sum(
                any(_runs_with(line, other, n - number, similar) for other in lines[n])
                for n in near
                if n != number
            )
            if repeats < needed:
                continue
            if line.label is not None or any(_same(line, first, similar) for first in kept):
                found.add(line.key)
            else:
                kept.append(line)
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
        missed = _add_page(out, _without_running(text, running), missed, outline.get(number, []))
    extracted = out.build(title, page_starts=tuple(starts))
    if not any(block.kind == "prose" for block in extracted.layout.blocks):
        raise Unreadable("no text", f"{pages} page(s) with no text but page heads and numbers")
    return extracted
