"""Word documents through python-docx, in document order: paragraphs, heading styles as
sections (`#` lines by level), list paragraphs as items, tables a row a line."""

from __future__ import annotations

import io
import re
import zipfile

from rag.readers.base import Extracted, TextBuilder, Unreadable
from rag.structure import CELL_SEPARATOR

_HEADING = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def _cells(row) -> list[str]:
    """A row's cell texts, a merged cell once (python-docx repeats it for each grid cell)."""
    seen: list[object] = []
    texts = []
    for cell in row.cells:
        if any(cell._tc is other for other in seen):
            continue
        seen.append(cell._tc)
        texts.append(" ".join(cell.text.split()))
    return texts


def read_docx(data: bytes) -> Extracted:
    from docx import Document
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from lxml.etree import XMLSyntaxError

    try:
        document = Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, XMLSyntaxError, KeyError, ValueError) as exc:
        raise Unreadable("broken", f"not a readable Word document ({exc})") from None
    out = TextBuilder()
    title = (document.core_properties.title or "").strip()
    # Style names by id, looked up once: python-docx resolves `paragraph.style` on every
    # call (most of the time spent on a 127k-word document, bench/EXTRACTION.md).
    names = {s.style_id: s.name or "" for s in document.styles}
    default = "Normal"  # a paragraph without a style id has the default paragraph style
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = [CELL_SEPARATOR.join(_cells(row)) for row in item.rows]
            out.content("\n".join(r for r in rows if r.strip(" |")))
            continue
        text = item.text.strip()
        if not text:
            continue
        properties = item._p.pPr
        style = names.get(item._p.style, default) if item._p.style else default
        numbered = properties is not None and properties.numPr is not None
        level = _HEADING.match(style)
        if style.lower() == "title":
            title = title or text
            out.heading(1, text)
        elif level:
            out.heading(int(level.group(1)) + 1, text)
        elif numbered or "list" in style.lower():  # many lists have numbering, no list style
            out.content("- " + text)
        else:
            out.content(text)
    if not out.blocks:
        raise Unreadable("no text", "the document holds no paragraph or table text")
    return out.build(title)
