"""Documents into passages: each document's record, its passages with their citations, the
text embedded for each, and the candidate answer spans of every passage."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rag.chunking import Chunk, chunk_layout, passage_spans
from rag.corpus import Document
from rag.embedding import vector_key
from rag.manifest import DocumentRecord
from rag.settings import Settings
from rag.structure import analyze_layout


def answer_span_texts(chunks: list[Chunk], model: str) -> dict[str, str]:
    """The candidate answer spans of every passage (see rag.answer), by vector key."""
    out = {}
    for chunk in chunks:
        for start, end, _ in passage_spans(chunk.text, chunk.section):
            text = chunk.text[start:end]
            out[vector_key(model, text)] = text
    return out


def index_document(
    doc: Document, settings: Settings
) -> tuple[DocumentRecord, list[Chunk], dict[str, str]]:
    """A document's record, its passages, and the text to embed for each vector key."""
    layout = doc.layout or analyze_layout(doc.text, fallback_title=Path(doc.doc_id).stem)
    if not layout.title:
        layout = replace(layout, title=Path(doc.doc_id).stem)
    chunks = chunk_layout(doc.doc_id, doc.text, layout, settings.chunk_size, settings.chunk_overlap)
    records: list[Chunk] = []
    to_embed: dict[str, str] = {}
    for c in chunks:
        key = vector_key(settings.model, c.embed_text)
        to_embed[key] = c.embed_text
        records.append(replace(c, vector_key=key))
    record = DocumentRecord(
        doc_id=doc.doc_id,
        title=layout.title,
        sha256=doc.sha256,
        size=doc.size,
        mtime_ns=doc.mtime_ns,
        chunks=len(records),
        chars=len(doc.text),
        checkpoints=doc.checkpoints,
        format=doc.format,
        page_starts=list(doc.page_starts),
    )
    return record, records, to_embed
