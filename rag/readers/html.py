"""Saved web pages through trafilatura: the article (or main text) with its headings,
lists and tables, without menus, footers, cookie banners and comments; the declared
charset honoured (trafilatura decodes the bytes). Its Markdown output goes through the
Markdown reader, so headings become sections the same way for both formats. A page where
trafilatura finds no article or main text (a bare `<pre>`, a short list) is read by its
baseline: the body's text paragraphs, rather than nothing."""

from __future__ import annotations

from rag.readers.base import Extracted, TextBuilder, Unreadable
from rag.readers.markdown import read_markdown


def read_html(data: bytes) -> Extracted:
    import trafilatura

    markdown = trafilatura.extract(
        data,
        output_format="markdown",
        include_formatting=True,  # headings and lists as Markdown
        include_tables=True,
        include_comments=False,
        include_links=False,
        include_images=False,
        with_metadata=True,  # the title in a front matter: one parse of the page, not two
    )
    if not markdown or not markdown.strip():
        return _baseline(data)
    return read_markdown(markdown)


def _baseline(data: bytes) -> Extracted:
    import trafilatura

    _, text, _ = trafilatura.baseline(data)
    if not text or not text.strip():
        raise Unreadable("no main text", "no text found in the page")
    out = TextBuilder()
    for paragraph in text.split("\n"):
        out.content(paragraph)
    metadata = trafilatura.extract_metadata(data)
    title = metadata.title if metadata is not None else None
    return out.build(title or "")
