"""Documents into passages: each document's record, its passages with their citations, the
text embedded for each, and the candidate answer spans of every passage."""

from __future__ import annotations

import bisect
from pathlib import Path

from rag.chunking import chunk_layout, passage_spans
from rag.corpus import Document
from rag.embedding import vector_key
from rag.manifest import ChunkRecord, DocumentRecord
from rag.settings import Settings
from rag.structure import analyze_layout


def answer_span_texts(chunks: list[ChunkRecord], model: str) -> dict[str, str]:
    """The candidate answer spans of every passage (see rag.answer), by vector key."""
    out = {}
    for chunk in chunks:
        for start, end, _ in passage_spans(chunk.text, chunk.section):
            text = chunk.text[start:end]
            out[vector_key(model, text)] = text
    return out


def line_of(newlines: list[int], offset: int) -> int:
    """1-based line number of character `offset`, given the offsets of every newline."""
    return bisect.bisect_left(newlines, offset) + 1


def index_document(
    doc: Document, settings: Settings
) -> tuple[DocumentRecord, list[ChunkRecord], dict[str, str]]:
    """A document's record, its passages, and the text to embed for each vector key."""
    layout = analyze_layout(doc.text, fallback_title=Path(doc.doc_id).stem)
    chunks = chunk_layout(doc.doc_id, doc.text, layout, settings.chunk_size, settings.chunk_overlap)
    newlines = [i for i, ch in enumerate(doc.text) if ch == "\n"]
    records: list[ChunkRecord] = []
    to_embed: dict[str, str] = {}
    for c in chunks:
        key = vector_key(settings.model, c.embed_text)
        to_embed[key] = c.embed_text
        records.append(
            ChunkRecord(
                chunk_id=c.chunk_id,
                doc_id=c.doc_id,
                ordinal=c.ordinal,
                start=c.start,
                end=c.end,
                line_start=line_of(newlines, c.start),
                line_end=line_of(newlines, c.end - 1),
                section=c.section,
                text=c.text,
                vector_key=key,
            )
        )
    record = DocumentRecord(
        doc_id=doc.doc_id,
        title=layout.title,
        sha256=doc.sha256,
        size=doc.size,
        mtime_ns=doc.mtime_ns,
        chunks=len(records),
        chars=len(doc.text),
        checkpoints=doc.checkpoints,
    )
    return record, records, to_embed
