"""Cutting a document into passages: sentence-aligned windows with overlap, never across
a heading or a boilerplate line, each an exact slice of the document text."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from rag.structure import SECTION_SEPARATOR, Layout, analyze_layout, split_sentences

# Bumped whenever chunk boundaries or their answer spans change for the same settings, so
# that indexes rebuild.
CHUNKER_VERSION = 8


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
        """What retrieval (the model and BM25) sees of the passage."""
        return retrieval_text(self.doc_id, self.section, self.text)


def name_words(doc_id: str) -> str:
    """The words of a file's name ("uvicorn-release-notes.md": "uvicorn release notes");
    numbers and hashes ("003_bddc2f2a3ccead0c.txt", "1402.txt") give none."""
    stem = doc_id.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return " ".join(w for w in re.split(r"[\W_]+", stem) if len(w) > 1 and w.isalpha())


def retrieval_text(doc_id: str, section: str, text: str) -> str:
    """A passage as retrieval sees it: under its file's name and its heading, so that a
    paragraph deep in a document is still found by what the document is about. The file
    name is often the only place a page names its subject (release notes whose headings are
    version numbers), as LlamaIndex's file_name metadata or a BM25F title field do."""
    return with_heading(name_words(doc_id), with_heading(section, text))


def with_heading(section: str, text: str) -> str:
    """`text` under the line `section`, unless it already starts with it (or there is none)."""
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


@dataclass
class _Run:
    """Consecutive pieces under one heading: a section's text, cut at sentences."""

    section: str
    pieces: list[Span]
    prose: bool  # False: a heading with nothing under it before the next heading
    joins_previous: bool  # nothing left out (boilerplate) between it and the run before


def _shared_section(first: str, second: str, title: str) -> str:
    """The heading both sections lie under ("A > B" and "A > C" give "A"), else the title."""
    common = []
    for a, b in zip(first.split(SECTION_SEPARATOR), second.split(SECTION_SEPARATOR), strict=False):
        if a != b:
            break
        common.append(a)
    return SECTION_SEPARATOR.join(common) or title


def merge_small_sections(runs: list[_Run], size: int, title: str) -> list[_Run]:
    """Join consecutive sections while together they fit in one passage, under the heading
    they share: a release note's "0.104.0 > Upgrades" bullet then carries its version, a
    heading with nothing under it comes with the text that follows it, and a one-line
    section is not a passage on its own. (The "combine small sections" step of title-based
    chunkers; the only bound is the passage size.)"""
    out: list[_Run] = []
    for run in runs:
        last = out[-1] if out else None
        fits = last is not None and run.pieces[-1][1] - last.pieces[0][0] <= size
        # A heading with nothing under it goes with what follows it, not what precedes it.
        if last and fits and run.joins_previous and (run.prose or not last.prose):
            section = _shared_section(last.section, run.section, title)
        elif last and run.joins_previous and not last.prose and run.prose:
            # ... however long that is ("## 0.62.0" over a long "### Features"): its first
            # passage starts with the heading, which would otherwise be in no passage; the
            # long section's passages keep its own path.
            section = run.section
        else:
            out.append(run)
            continue
        out[-1] = _Run(
            section, last.pieces + run.pieces, last.prose or run.prose, last.joins_previous
        )
    return [run for run in out if run.prose]


def chunk_layout(doc_id: str, text: str, layout: Layout, size: int, overlap: int) -> list[Chunk]:
    """Chunks of an analysed document (see `chunk_document`)."""
    runs: list[_Run] = []
    section = layout.title
    current: list[Span] = []
    has_prose = False
    joins = False  # whether the run being gathered follows the previous one directly

    def flush(barrier: bool = False) -> None:
        nonlocal current, has_prose, joins
        if current:
            runs.append(_Run(run_section, current, has_prose, joins))
            joins = True
        if barrier:
            joins = False
        current, has_prose = [], False

    run_section = section
    for block in layout.blocks:
        if block.kind == "heading":
            flush()
            section = run_section = block.label
            current = split_long_span(text, block.start, block.end, size)
        elif block.kind == "boilerplate":
            flush(barrier=True)
        else:
            if not current:
                run_section = section
            for start, end in block.sentences:
                current.extend(split_long_span(text, start, end, size))
            has_prose = has_prose or bool(block.sentences)
    flush()

    newlines = [i for i, ch in enumerate(text) if ch == "\n"]
    chunks: list[Chunk] = []
    for run in merge_small_sections(runs, size, layout.title):
        for start, end in pack_windows(run.pieces, size, overlap):
            chunks.append(
                Chunk(
                    chunk_id=f"{doc_id}#{len(chunks)}",
                    doc_id=doc_id,
                    ordinal=len(chunks),
                    start=start,
                    end=end,
                    line_start=line_of(newlines, start),
                    line_end=line_of(newlines, end - 1),
                    section=run.section,
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
    consecutive sentences of one paragraph that fits in SPAN_CHARS. A heading line is a
    span of its own (`is_heading` tells; only some questions take one for an answer). The
    headings inside small sections joined into one passage are not on its section path,
    so they count as sentences (measured that way). The index embeds these once;
    questions look them up."""
    spans = []
    for line in re.finditer(r"[^\n]+", text):  # a heading line is not a sentence start
        if is_heading(line.group(), section):
            spans.append((line.start(), line.end(), 1))
            continue
        sentences = split_sentences(text, line.start(), line.end())
        for i, (start, end) in enumerate(sentences):
            spans.append((start, end, 1))
            if i + 1 < len(sentences) and sentences[i + 1][1] - start <= SPAN_CHARS:
                spans.append((start, sentences[i + 1][1], 2))
    return spans


def sentence_spans(text: str, section: str) -> list[tuple[int, int, int]]:
    """`passage_spans` without the headings: the sentences whose vectors are a passage's
    dense evidence (a heading is not evidence of its own)."""
    return [s for s in passage_spans(text, section) if not is_heading(text[s[0] : s[1]], section)]


def is_heading(line: str, section: str) -> bool:
    """Whether a line of a passage is one of the headings of its section path."""
    line = line.strip()
    return bool(line) and (line == section or line in section.split(SECTION_SEPARATOR))
