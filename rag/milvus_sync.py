"""Bringing the Milvus collections (rag.milvus_store) in line with a local build, by
document content hash: the passages of removed and changed documents deleted, of added and
changed ones inserted, the answer-span vectors, BM25 statistics, copy groups and document
records updated where they differ, and the manifest written last."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunking import Chunk
from rag.duplicates import _text_key
from rag.errors import RagError
from rag.manifest import DocumentRecord, Manifest, read_manifest
from rag.milvus_store import (
    DUMMY_DIM,
    INSERT_ROWS,
    MAX_COPIES,
    MAX_ID,
    MAX_VARCHAR,
    SAME_INDEX,
    SCHEMA_VERSION,
    Collections,
    StoredIndex,
    all_rows,
    bm25_tokens,
    connect,
    create_collections,
    insert_rows,
    milvus_uri,
    quoted,
    read_stored,
    term_key,
    unavailable,
)
from rag.settings import Settings
from rag.store import read_chunks, read_spans, read_vectors


@dataclass
class SyncReport:
    """What `sync_index` changed in Milvus."""

    uri: str
    recreated: bool = False
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    passages_written: int = 0
    passages_deleted: int = 0
    spans_added: int = 0
    spans_removed: int = 0
    terms_written: int = 0
    seconds: float = 0.0


def _passage_rows(
    chunks: list[Chunk],
    rows: list[int],
    vectors: np.ndarray,
    records: dict[str, DocumentRecord],
    stem: bool,
    stopwords: bool,
) -> list[dict]:
    out = []
    for row in rows:
        c = chunks[row]
        record = records[c.doc_id]
        out.append(
            {
                "chunk_id": c.chunk_id,
                "doc_id": c.doc_id,
                "ordinal": c.ordinal,
                "start": c.start,
                "end": c.end,
                "line_start": c.line_start,
                "line_end": c.line_end,
                "page": record.page_of(c.start) or 0,
                "section": c.section,
                "text": c.text,
                "vector_key": c.vector_key,
                "copy_key": _text_key(c.text),
                "doc_sha256": record.sha256,
                "bm25_text": " ".join(bm25_tokens(c, stem, stopwords)),
                "vector": np.asarray(vectors[row], dtype=np.float32).tolist(),
            }
        )
    return out


def _check_sizes(chunks: list[Chunk]) -> None:
    for c in chunks:
        if max(len(c.text.encode()), len(c.section.encode())) > MAX_VARCHAR:
            raise RagError(
                f"passage {c.chunk_id} is over Milvus's {MAX_VARCHAR} bytes: lower "
                "RAG_CHUNK_SIZE (or shorten its heading)"
            )
        if len(c.doc_id.encode()) > MAX_ID:
            raise RagError(f"document path {c.doc_id[:80]}... is over {MAX_ID} bytes")


def sync_index(settings: Settings, build: Path, client: Any | None = None) -> SyncReport:
    """Bring the Milvus collections in line with a local build (its passages, vectors and
    span vectors, already computed), by document content hash."""
    from pymilvus.exceptions import MilvusException

    started = time.perf_counter()
    client = client or connect(settings)
    names = Collections(settings.milvus_collection)
    report = SyncReport(uri=milvus_uri(settings))
    manifest = read_manifest(build)
    chunks = read_chunks(build)
    _check_sizes(chunks)
    vectors = read_vectors(build)
    span_keys, span_vectors = read_spans(build)
    try:
        stored = read_stored(client, names)
        if (
            stored is None
            or stored.schema != SCHEMA_VERSION
            or any(
                getattr(stored.manifest, n, None) != getattr(manifest, n, None) for n in SAME_INDEX
            )
        ):
            for name in names.all():
                if client.has_collection(name):
                    client.drop_collection(name)
            create_collections(client, names, manifest.dimension)
            report.recreated = stored is not None
            stored = None
        for name in names.all():
            client.load_collection(name)
        _sync(client, names, settings, manifest, chunks, vectors, span_keys, span_vectors,
              stored, report)  # fmt: skip
    except MilvusException as exc:
        raise unavailable(settings, exc) from None
    report.seconds = time.perf_counter() - started
    return report


def _sync(
    client: Any,
    names: Collections,
    settings: Settings,
    manifest: Manifest,
    chunks: list[Chunk],
    vectors: np.ndarray,
    span_keys: np.ndarray,
    span_vectors: np.ndarray,
    stored: StoredIndex | None,
    report: SyncReport,
) -> None:
    stem, stopwords = manifest.bm25_stem, manifest.bm25_stopwords
    records = {d.doc_id: d for d in manifest.documents}
    old = {d.doc_id: d for d in stored.manifest.documents} if stored else {}
    report.added = sorted(set(records) - set(old))
    report.changed = sorted(d for d in records if d in old and old[d].sha256 != records[d].sha256)
    report.removed = sorted(set(old) - set(records))

    # Passages: those of removed and changed documents out, of added and changed ones in.
    gone = report.removed + report.changed
    for start in range(0, len(gone), 256):
        part = gone[start : start + 256]
        deleted = client.delete(names.passages, filter=f"doc_id in {quoted(part)}")
        # Milvus Lite answers with the deleted ids, a server with {"delete_count": n}
        report.passages_deleted += (
            len(deleted) if isinstance(deleted, list) else int(deleted.get("delete_count", 0))
        )
    fresh = set(report.added) | set(report.changed)
    rows = [i for i, c in enumerate(chunks) if c.doc_id in fresh]
    for start in range(0, len(rows), 4 * INSERT_ROWS):  # rows built a slice at a time
        part = rows[start : start + 4 * INSERT_ROWS]
        insert_rows(client, names.passages,
                _passage_rows(chunks, part, vectors, records, stem, stopwords))  # fmt: skip
    report.passages_written = len(rows)

    # Answer-span vectors: add the new keys, drop those no passage holds any more.
    wanted = {k.decode(): i for i, k in enumerate(span_keys.tolist())}
    have = {row["key"] for row in all_rows(client, names.spans, ["key"])}
    new = [k for k in wanted if k not in have]
    span_rows = [
        {"key": k, "vector": np.asarray(span_vectors[wanted[k]], dtype=np.float32).tolist()}
        for k in new
    ]
    insert_rows(client, names.spans, span_rows)
    unused = sorted(have - set(wanted))
    for start in range(0, len(unused), 1024):
        client.delete(names.spans, ids=unused[start : start + 1024])
    report.spans_added, report.spans_removed = len(new), len(unused)

    # BM25 statistics over all passages, as bm25s computes them (rag.milvus_search).
    df: Counter[str] = Counter()
    total = 0
    for c in chunks:
        tokens = bm25_tokens(c, stem, stopwords)
        total += len(tokens)
        df.update({term_key(t) for t in tokens})
    have_df = {row["term"]: row["df"] for row in all_rows(client, names.terms, ["term", "df"])}
    changed_terms = [t for t, n in df.items() if have_df.get(t) != n]
    dummy = [0.0] * DUMMY_DIM
    insert_rows(
        client, names.terms, [{"term": t, "df": df[t], "vector": dummy} for t in changed_terms]
    )
    stale = sorted(set(have_df) - set(df))
    for start in range(0, len(stale), 1024):
        client.delete(names.terms, ids=stale[start : start + 1024])
    report.terms_written = len(changed_terms)

    # Groups of exact copies (rag.duplicates), rewritten where their members changed.
    groups: dict[str, list[str]] = {}
    for c in chunks:
        groups.setdefault(_text_key(c.text), []).append(c.chunk_id)
    groups = {k: ids[:MAX_COPIES] for k, ids in groups.items() if len(ids) > 1}
    have_groups = {
        row["key"]: row["chunk_ids"] for row in all_rows(client, names.copies, ["key", "chunk_ids"])
    }
    insert_rows(client, names.copies, [
        {"key": k, "chunk_ids": ids, "vector": dummy}
        for k, ids in groups.items() if have_groups.get(k) != ids
    ])  # fmt: skip
    ungrouped = sorted(set(have_groups) - set(groups))
    for start in range(0, len(ungrouped), 1024):
        client.delete(names.copies, ids=ungrouped[start : start + 1024])

    # Documents, then the manifest last: a reader that finds it finds the rest.
    old_json = {d: r.model_dump(mode="json") for d, r in old.items()}
    doc_rows = [
        {"key": f"doc:{d}", "kind": "doc", "value": r.model_dump(mode="json"), "vector": dummy}
        for d, r in records.items()
        if old_json.get(d) != r.model_dump(mode="json")
    ]
    insert_rows(client, names.meta, doc_rows)
    if report.removed:
        client.delete(names.meta, ids=[f"doc:{d}" for d in report.removed])
    value = manifest.to_json()
    value.pop("documents")
    value.pop("files", None)
    value["document_order"] = list(records)
    value["backend"] = "milvus"
    value["milvus_schema"] = SCHEMA_VERSION
    # avgdl as bm25s computes it (the mean of the token counts), so that scores agree
    value["bm25_stats"] = {"n": len(chunks), "avgdl": total / len(chunks) if chunks else 0.0}
    client.upsert(names.meta, [{"key": "manifest", "kind": "manifest", "value": value,
                                "vector": dummy}])  # fmt: skip
    # Sealed segments are searched through their indexes; Milvus Lite searches rows still
    # in its write buffer one by one in Python (bench/MILVUS.md: 3x slower at 1k passages).
    for name in names.all():
        client.flush(name)
