"""Markdown (CommonMark, tables, front matter) through markdown-it-py's token stream.

What a reader of the rendered page sees is kept: headings (as `#` lines, their `{ #id }`
anchors removed), paragraphs, list items, tables (a row a line, cells split by " | ", the
rows in one block) and code blocks verbatim, each its own block. What only drives the
layout is left out: front matter (its `title:` becomes the title), HTML blocks and
comments, admonition fences (`/// note`, `!!! note`; their title stays) and snippet
includes (`{* file.py *}`).
"""

from __future__ import annotations

import re
from typing import Any

from rag.readers.base import Extracted, TextBuilder
from rag.structure import CELL_SEPARATOR

_ANCHOR = re.compile(r"\s*\{\s*#[^}]*\}\s*$")
_ADMONITION = re.compile(r"^\s*(?:/{3,}|!{3}|\?{3}\+?)\s*(?:[\w-]+)?\s*(?:\|\s*)?(.*)$")
_INCLUDE = re.compile(r"^\s*\{\*.*\*\}\s*$")
_TITLE = re.compile(r"^title:\s*(.+?)\s*$", re.MULTILINE)


def _parser() -> Any:
    from markdown_it import MarkdownIt
    from mdit_py_plugins.front_matter import front_matter_plugin

    return MarkdownIt("commonmark").enable("table").use(front_matter_plugin)


def _inline(token: Any) -> str:
    """The text a reader sees of an inline token: markup, raw HTML and images' URLs out."""
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content)  # its alt text
    return "".join(parts)


def _paragraph(text: str) -> str:
    """A paragraph without admonition fences and snippet includes (a fence's title stays)."""
    kept = []
    for line in text.split("\n"):
        if _INCLUDE.match(line):
            continue
        fence = _ADMONITION.match(line)
        if fence and line.lstrip()[:1] in "/!?":
            title = fence.group(1).strip().strip('"')
            if title:
                kept.append(title)
            continue
        kept.append(line)
    return "\n".join(kept).strip()


def read_markdown(source: str, title: str = "") -> Extracted:
    """The text of a Markdown page; `title` (from elsewhere, as a web page's) wins over
    the front matter's, which wins over the first heading."""
    tokens = _parser().parse(source)
    out = TextBuilder()
    lists: list[str] = []  # the open lists' markers, innermost last
    row: list[str] = []
    table: list[str] = []
    for i, token in enumerate(tokens):
        kind = token.type
        if kind == "front_matter":
            found = _TITLE.search(token.content)
            if found and not title:
                title = found.group(1).strip("'\"")
        elif kind == "heading_open":
            out.heading(int(token.tag[1]), _ANCHOR.sub("", _inline(tokens[i + 1])))
        elif kind in ("bullet_list_open", "ordered_list_open"):
            lists.append("-" if kind == "bullet_list_open" else "1.")
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "paragraph_open":
            text = _paragraph(_inline(tokens[i + 1]))
            if text and lists and tokens[i - 1].type == "list_item_open":
                text = "  " * (len(lists) - 1) + lists[-1] + " " + text
            out.content(text)
        elif kind in ("fence", "code_block"):
            out.content(token.content)
        elif kind == "tr_open":
            row = []
        elif kind == "inline" and tokens[i - 1].type in ("th_open", "td_open"):
            row.append(_inline(token).strip())
        elif kind == "tr_close":
            table.append(CELL_SEPARATOR.join(row))
        elif kind == "table_close":  # one block: a table's rows stay together
            out.content("\n".join(table))
            table = []
    return out.build(title)
