"""Readers: a file of each supported format into the text its reader sees.

Every reader returns an `Extracted`: plain text with Markdown-style `#` heading lines for
its sections (so the one layout analysis, rag.structure, finds them for every format),
paragraphs and blocks separated by blank lines, the title from the format's metadata where
it has one, and for paged formats where each page starts. Citations index into this text,
which the index stores; a plain-text file is its own text (raw offsets, as always).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from rag.readers.base import Extracted, Unreadable

# Bumped whenever a reader's output changes for the same file, so that what was extracted
# before (rag.extraction_cache) is read again.
READER_VERSION = 10

READERS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}

__all__ = ["READERS", "READER_VERSION", "Extracted", "Unreadable", "extract"]


def extract(path: Path, data: bytes | BinaryIO) -> Extracted:
    """The text of `data`, the bytes of `path` (or for a PDF, the file opened: its pages
    are read one at a time), read by the reader of its extension.
    Raises Unreadable (with the reason a summary shows) when the file has no text to give:
    encrypted, no text layer, broken."""
    kind = READERS.get(path.suffix.lower())
    if kind == "pdf":
        from rag.readers.pdf import read_pdf

        return read_pdf(data)
    if not isinstance(data, bytes):
        data = data.read()
    if kind == "markdown":
        from rag.readers.markdown import read_markdown

        return read_markdown(data.decode("utf-8", errors="replace"))
    if kind == "html":
        from rag.readers.html import read_html

        return read_html(data)
    if kind == "docx":
        from rag.readers.docx import read_docx

        return read_docx(data)
    raise Unreadable("unsupported extension", f"no reader for {path.suffix or 'files without one'}")
