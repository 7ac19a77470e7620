"""What a reader gives back, how it is put together, and how a reader says a file has no
text to give."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from rag.errors import RagError
from rag.structure import SECTION_SEPARATOR, Block, Layout, split_sentences


@dataclass(frozen=True)
class Extracted:
    """`text`: what a reader of the file sees; `layout`: its headings and content blocks
    as the reader found them (no guessing from line shapes, as for scraped plain text);
    `page_starts`: for paged formats, the offset in `text` where each page (1, 2, ...)
    begins."""

    text: str
    layout: Layout
    page_starts: tuple[int, ...] = ()

    @property
    def title(self) -> str:
        return self.layout.title

    def page_of(self, offset: int) -> int | None:
        return page_of(self.page_starts, offset)


def page_of(page_starts: tuple[int, ...] | list[int], offset: int) -> int | None:
    """The 1-based page holding character `offset`, from where each page starts; None for
    unpaged formats."""
    if not page_starts:
        return None
    return max(1, bisect.bisect_right(page_starts, offset))


class Unreadable(RagError):
    """A file with no text to give; `reason` is what the index summary counts it under."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# Control characters are no text a reader sees: PDFium gives them for glyphs of a font it
# cannot decode ("\x04\x05\x06"), and an ESC printed by `rag show` would drive the terminal.
# Newlines and tabs stay; so does "\r" (a line break in some files).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def without_controls(text: str) -> str:
    return _CONTROL.sub("", text)


class TextBuilder:
    """Blocks appended in reading order become the text (a blank line between blocks)
    and its layout. A heading's label is its path from the top ("Tutorial > Query
    parameters > Required"): the section a passage under it cites."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.blocks: list[Block] = []
        self.length = 0
        self.path: list[tuple[int, str]] = []  # (level, heading) of the open sections
        self.levels: list[int] = []  # of every heading, in order

    def _append(self, text: str) -> tuple[int, int]:
        if self.parts:
            self.parts.append("\n\n")
            self.length += 2
        start = self.length
        self.parts.append(text)
        self.length += len(text)
        return start, self.length

    def heading(self, level: int, text: str) -> None:
        text = " ".join(without_controls(text).split())
        if not text:
            return
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.path.append((level, text))
        self.levels.append(level)
        start, end = self._append(text)
        label = SECTION_SEPARATOR.join(h for _, h in self.path)
        self.blocks.append(Block(start, end, "heading", label))

    def content(self, text: str) -> None:
        """A paragraph, list item, table or code block: cited and embedded as written (control
        characters aside)."""
        text = without_controls(text).strip()
        if not text:
            return
        start, end = self._append(text)
        sentences = tuple((start + a, start + b) for a, b in split_sentences(text, 0, len(text)))
        self.blocks.append(Block(start, end, "prose", "", sentences))

    def page_break(self) -> int:
        """Where the next page starts (the offset its first block will have)."""
        return self.length + (2 if self.parts else 0)

    def build(self, title: str = "", page_starts: tuple[int, ...] = ()) -> Extracted:
        text = "".join(self.parts) + "\n"
        title = " ".join(without_controls(title).split())
        layout = Layout(title=title or self._heading_title(), blocks=tuple(self.blocks))
        return Extracted(text=text, layout=layout, page_starts=page_starts)

    def _heading_title(self) -> str:
        """The first heading, when it heads the whole text (no later heading at its level or
        above); else none, and the file name serves. Release notes open with their newest
        version ("## 0.35.0"), which is one section among many, not the title."""
        first = next((b.label for b in self.blocks if b.kind == "heading"), "")
        if first and all(level > self.levels[0] for level in self.levels[1:]):
            return first
        return ""
