"""Word documents through python-docx, in document order: paragraphs, heading styles as
sections (`#` lines by level), list paragraphs as items, tables a row a line."""

from __future__ import annotations

import io
import re
import zipfile

from rag.readers.base import Extracted, TextBuilder, Unreadable

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
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = [" | ".join(_cells(row)) for row in item.rows]
            out.content("\n".join(r for r in rows if r.strip(" |")))
            continue
        text = item.text.strip()
        if not text:
            continue
        style = (item.style.name if item.style is not None else "") or ""
        level = _HEADING.match(style)
        if style.lower() == "title":
            title = title or text
            out.heading(1, text)
        elif level:
            out.heading(int(level.group(1)) + 1, text)
        elif "list" in style.lower():
            out.content("- " + text)
        else:
            out.content(text)
    if not out.blocks:
        raise Unreadable("no text", "the document holds no paragraph or table text")
    return out.build(title)
