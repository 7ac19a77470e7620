"""PDFs through pypdfium2 (PDFium, the engine of Chrome's viewer), page by page: each page
is loaded, read and closed in turn, so a long PDF never sits in memory whole, only its
text. Words split by a hyphen at a line end are joined. Where each page starts is kept:
citations carry the page."""

from __future__ import annotations

import re
from typing import BinaryIO

from rag.readers.base import Extracted, TextBuilder, Unreadable

# Fewer characters a page than this on average: scanned images without a text layer.
MIN_CHARS_PER_PAGE = 20
# The letters before a line-end hyphen (any script; the last one a lower-case ASCII letter,
# as before) and the first letter after it.
_HYPHENATED = re.compile(r"([^\W\d_]*[a-z])[-\u00ad\x02]\n([a-z])")
# PDFium marks a hyphen it took for a line-end break with U+FFFE (bench/EXTRACTION.md): a
# split word between lower-case letters ("exam\ufffeple"), a real compound elsewhere
# ("FAA\ufffeapproved").
_SPLIT_WORD = re.compile(r"([^\W\d_]*[a-z])\ufffe(?=[a-z])")


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


def _reflow(paragraph: str) -> str:
    """A paragraph's lines joined by spaces: a PDF breaks lines where the page is full, not
    where a sentence or an item ends, and a sentence cut in two lines is two fragments to
    the sentence splitter (and to the answer spans: "AOA sensor system test ........" on
    one line, its "$248,200." on the next)."""
    return " ".join(line.strip() for line in paragraph.splitlines() if line.strip())


def read_pdf(source: bytes | BinaryIO) -> Extracted:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(source)
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            raise Unreadable("encrypted", "the PDF needs a password to open") from None
        raise Unreadable("broken", f"PDFium cannot open it ({message})") from None
    out = TextBuilder()
    starts: list[int] = []
    chars = 0
    try:
        for number in range(len(pdf)):
            page = pdf[number]
            textpage = page.get_textpage()
            text = _page_text(textpage.get_text_range())
            textpage.close()
            page.close()
            starts.append(out.page_break())
            chars += len(text)
            for paragraph in re.split(r"\n\s*\n", text):  # PDFs mark no structure
                out.content(_reflow(paragraph))
        title = str(pdf.get_metadata_dict().get("Title", "") or "").strip()
        if re.search(r"\.\w{2,4}$", title):  # "Binder1.pdf": a file name, not a title
            title = ""
        pages = len(pdf)
    finally:
        pdf.close()
    if chars < MIN_CHARS_PER_PAGE * max(1, pages):
        raise Unreadable(
            "no text layer",
            f"{pages} page(s), {chars} characters of text: scanned images (OCR is off)",
        )
    return out.build(title, page_starts=tuple(starts))
