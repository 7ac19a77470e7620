"""Cutting a document into passages: sentence-aligned windows with overlap, never across
a heading or a boilerplate line, each an exact slice of the document text."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from rag.structure import Layout, analyze_layout, split_sentences

# Bumped whenever chunk boundaries change for the same settings, so that indexes rebuild.
CHUNKER_VERSION = 2


@dataclass(frozen=True)
class Chunk:
    """A passage, as cut and as stored (chunks.jsonl): `document_text[start:end] == text`,
    under heading `section`, on lines `line_start..line_end`; `vector_key` is set once the
    passage is keyed for a model (rag.passages). A plain dataclass: a large index holds
    millions and loads them all."""

    chunk_id: str  # doc_id#ordinal: stable while the document is unchanged
    doc_id: str
    ordinal: int
    start: int
    end: int
    line_start: int
    line_end: int
    section: str
    text: str
    vector_key: str = ""  # sha256 of (model, embedded text): equal keys share a vector

    @property
    def embed_text(self) -> str:
        return with_heading(self.section, self.text)


def with_heading(section: str, text: str) -> str:
    """What retrieval sees of a passage: the passage under its heading, so that a paragraph
    deep in an article is still found by what the article is about."""
    if not section or text.startswith(section):
        return text
    return f"{section}\n{text}"


Span = tuple[int, int]


def split_long_span(text: str, start: int, end: int, limit: int) -> list[Span]:
    """Cut one over-long sentence at whitespace into pieces of at most `limit` characters
    (a word longer than `limit` is cut where the limit falls)."""
    pieces: list[Span] = []
    while end - start > limit:
        cut = text.rfind(" ", start + 1, start + limit + 1)
        cut = max(cut, text.rfind("\n", start + 1, start + limit + 1))
        if cut <= start:
            cut = start + limit
        piece_end = cut
        while piece_end > start and text[piece_end - 1].isspace():
            piece_end -= 1
        pieces.append((start, piece_end))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        pieces.append((start, end))
    return pieces


def pack_windows(pieces: list[Span], size: int, overlap: int) -> list[Span]:
    """Group consecutive pieces into windows of at most `size` characters; each window
    after the first starts with the last pieces of the previous one, up to `overlap`.

    The last window is filled backwards up to `size`, so that a run does not end on a
    short fragment that carries little meaning of its own.
    """
    bounds: list[tuple[int, int]] = []  # (first piece, last piece) of each window
    i = 0
    while i < len(pieces):
        j = i
        while j + 1 < len(pieces) and pieces[j + 1][1] - pieces[i][0] <= size:
            j += 1
        bounds.append((i, j))
        if j + 1 >= len(pieces):
            break
        nxt = j + 1
        for back in range(i + 1, j + 1):
            carried = pieces[j][1] - pieces[back][0]
            if carried <= overlap and pieces[j + 1][1] - pieces[back][0] <= size:
                nxt = back
                break
        i = nxt
    if len(bounds) > 1:
        (prev_first, _), (first, last) = bounds[-2], bounds[-1]
        while first - 1 > prev_first and pieces[last][1] - pieces[first - 1][0] <= size:
            first -= 1
        bounds[-1] = (first, last)
    return [(pieces[a][0], pieces[b][1]) for a, b in bounds]


def chunk_layout(doc_id: str, text: str, layout: Layout, size: int, overlap: int) -> list[Chunk]:
    """Chunks of an analysed document (see `chunk_document`)."""
    runs: list[tuple[str, list[Span], bool]] = []  # (section, pieces, has prose)
    section = layout.title
    current: list[Span] = []
    has_prose = False

    def flush() -> None:
        nonlocal current, has_prose
        if current and has_prose:
            runs.append((run_section, current, has_prose))
        current, has_prose = [], False

    run_section = section
    for block in layout.blocks:
        if block.kind == "heading":
            flush()
            section = run_section = block.label
            current = split_long_span(text, block.start, block.end, size)
        elif block.kind == "boilerplate":
            flush()
        else:
            if not current:
                run_section = section
            for start, end in block.sentences:
                current.extend(split_long_span(text, start, end, size))
            has_prose = has_prose or bool(block.sentences)
    flush()

    newlines = [i for i, ch in enumerate(text) if ch == "\n"]
    chunks: list[Chunk] = []
    for run_section, pieces, _ in runs:
        for start, end in pack_windows(pieces, size, overlap):
            chunks.append(
                Chunk(
                    chunk_id=f"{doc_id}#{len(chunks)}",
                    doc_id=doc_id,
                    ordinal=len(chunks),
                    start=start,
                    end=end,
                    line_start=line_of(newlines, start),
                    line_end=line_of(newlines, end - 1),
                    section=run_section,
                    text=text[start:end],
                )
            )
    return chunks


def line_of(newlines: list[int], offset: int) -> int:
    """1-based line number of character `offset`, given the offsets of every newline."""
    return bisect.bisect_left(newlines, offset) + 1


def chunk_document(doc_id: str, text: str, size: int, overlap: int) -> list[Chunk]:
    """Passages of one document: windows of whole sentences (at most `size` characters,
    `overlap` characters of whole sentences carried over), each under its section."""
    layout = analyze_layout(text, fallback_title=doc_id.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    return chunk_layout(doc_id, text, layout, size, overlap)


# An answer span is one sentence or two of the same paragraph: news prose often names the
# subject in one sentence and gives the figure in the next.
SPAN_CHARS = 320


def passage_spans(text: str, section: str) -> list[tuple[int, int, int]]:
    """(start, end, sentences) of every sentence of a passage and of every pair of
    consecutive sentences of one paragraph that fits in SPAN_CHARS; headings left out.
    The index embeds these once; questions look them up."""
    spans = []
    for line in re.finditer(r"[^\n]+", text):  # a heading line is not a sentence start
        if line.group().strip() == section:
            continue  # headings name a topic; they do not answer
        sentences = split_sentences(text, line.start(), line.end())
        for i, (start, end) in enumerate(sentences):
            spans.append((start, end, 1))
            if i + 1 < len(sentences) and sentences[i + 1][1] - start <= SPAN_CHARS:
                spans.append((start, sentences[i + 1][1], 2))
    return spans
