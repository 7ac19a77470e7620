"""The index on disk: a folder of named files, read by one `load_index` (written by one
`rag.publish.save_index`, published atomically).

    index/
      CURRENT                 name of the live build, replaced atomically (os.replace)
      build-<time>-<id>/      one complete build
        manifest.json         format, model, chunking, documents with sha256, counts, and
                              the size and BLAKE3 checksum of every other file
        chunks.jsonl          one passage a line, with its citation
        vectors.npy           float32 passage vectors, row i = chunk i (the reuse cache)
        faiss.index           the dense search structure (flat, HNSW or IVF-PQ)
        bm25/                 the keyword index (bm25s) over the same passages
        span_keys.npy         sorted vector keys of the answer spans (rag.answer)
        span_vectors.npy      their vectors (float16: half the size, cosines to 1e-3)

A build is written into a new folder first; only when every file is on disk does CURRENT
switch to it. A crash or kill at any moment leaves CURRENT naming a complete build. Every
file is checked against its checksum when the index loads and before its vectors are
reused, so damage that keeps a file's size is caught, not served.
"""

from __future__ import annotations

import json
import logging
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunking import Chunk, sentence_spans
from rag.duplicates import DuplicateGroups
from rag.embedding import vector_key
from rag.errors import IndexCorrupt, IndexMismatch, IndexNotFound, RagError
from rag.holds import hold_build, release
from rag.lexical import LexicalIndex
from rag.manifest import (
    BM25,
    CHUNKS,
    FAISS_INDEX,
    MANIFEST,
    SPAN_KEYS,
    SPAN_VECTORS,
    VECTORS,
    DocumentRecord,
    Manifest,
    corrupt,
    read_manifest,
    verify_files,
)
from rag.models import DocumentInfo
from rag.vector_index import read_vector_index

LOG = logging.getLogger(__name__)

POINTER = "CURRENT"
BUILD_PREFIX = "build-"


SPAN_LOOKUPS_KEPT = 200_000  # passages whose sentence rows are remembered (~30 MB)


@dataclass
class IndexData:
    """A loaded index: everything a query needs (vectors and FAISS file memory-mapped)."""

    path: Path
    manifest: Manifest
    chunks: list[Chunk]
    faiss_index: Any
    vectors: np.ndarray  # memory-mapped: exact scores for filtered and approximate search
    span_keys: np.ndarray  # sorted vector keys of the answer spans, memory-mapped
    span_vectors: np.ndarray
    lexical: LexicalIndex | None = None
    documents: dict[str, DocumentRecord] = field(init=False)
    duplicates: DuplicateGroups = field(init=False)
    rows_by_doc: dict[str, list[int]] = field(init=False)
    _spans_of_passage: dict[int, np.ndarray] = field(init=False, repr=False)

    def span_rows(self, keys: list[str]) -> np.ndarray:
        """Rows of `span_vectors` for these vector keys; -1 where a key is not stored."""
        wanted = np.array(keys, dtype="S64")
        if not len(self.span_keys):
            return np.full(len(keys), -1)
        at = np.searchsorted(self.span_keys, wanted).clip(max=len(self.span_keys) - 1)
        return np.where(self.span_keys[at] == wanted, at, -1)

    def passages_before(self, doc_id: str, ordinal: int, count: int) -> list[Chunk]:
        """Up to `count` passages of `doc_id` before passage `ordinal`, nearest first."""
        rows = self.rows_by_doc.get(doc_id, [])  # in ordinal order, from 0
        chunks = [self.chunks[r] for r in rows[max(0, ordinal - count) : ordinal]]
        return [c for c in reversed(chunks) if c.ordinal < ordinal]

    def spans_of(self, row: int) -> np.ndarray:
        """Rows of `span_vectors` holding passage `row`'s sentences (and sentence pairs),
        looked up once per passage and remembered: retrieval scores a passage by them."""
        found = self._spans_of_passage.get(row)
        if found is None:
            chunk = self.chunks[row]
            model = self.manifest.model
            keys = [
                vector_key(model, chunk.text[start:end])
                for start, end, _ in sentence_spans(chunk.text, chunk.section)
            ]
            rows = self.span_rows(keys) if keys else np.empty(0, dtype=np.int64)
            if len(self._spans_of_passage) >= SPAN_LOOKUPS_KEPT:  # bounded: start afresh
                self._spans_of_passage.clear()
            found = self._spans_of_passage[row] = rows[rows >= 0]
        return found

    def __post_init__(self) -> None:
        self._spans_of_passage = {}
        self.documents = {d.doc_id: d for d in self.manifest.documents}
        self.duplicates = DuplicateGroups([c.text for c in self.chunks])
        self.rows_by_doc = {}
        for row, chunk in enumerate(self.chunks):
            self.rows_by_doc.setdefault(chunk.doc_id, []).append(row)


def current_build(index_dir: Path) -> Path | None:
    """The live build folder, or None when no index was ever published here. A damaged
    pointer raises IndexCorrupt: `rag index` repairs it (see `newest_complete_build`)."""
    pointer = Path(index_dir) / POINTER
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorrupt(f"cannot read {pointer} ({exc}); run `rag index` to repair it") from None
    build = Path(index_dir) / name
    if not name.startswith(BUILD_PREFIX) or "/" in name or not (build / MANIFEST).is_file():
        raise IndexCorrupt(
            f"{pointer} names no complete build ({name[:80]!r}); run `rag index` to repair it "
            "(vectors already embedded are reused)"
        )
    return build


def newest_complete_build(index_dir: Path) -> Path | None:
    """The most recent build folder whose manifest reads and whose files pass their
    checksums: what a damaged pointer is repaired from, its vectors reused."""
    builds = sorted(
        (p for p in Path(index_dir).glob(f"{BUILD_PREFIX}*") if (p / MANIFEST).is_file()),
        key=lambda p: p.name,
        reverse=True,
    )
    for build in builds:
        try:
            verify_files(build, read_manifest(build))
        except RagError:
            continue
        return build
    return None


def read_chunks(build: Path) -> list[Chunk]:
    try:
        with open(build / CHUNKS, encoding="utf-8") as fh:
            return [Chunk(**json.loads(line)) for line in fh]
    except FileNotFoundError:
        raise corrupt(build / CHUNKS, "is missing") from None
    except (ValueError, TypeError) as exc:
        raise corrupt(build / CHUNKS, f"is unreadable ({type(exc).__name__})") from None


def read_vectors(build: Path, mmap: bool = True) -> np.ndarray:
    """Stored passage vectors; memory-mapped so that reuse reads only the rows it needs."""
    try:
        return np.load(build / VECTORS, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise corrupt(build / VECTORS, "is missing") from None
    except ValueError as exc:
        raise corrupt(build / VECTORS, f"is unreadable ({exc})") from None


def read_spans(build: Path) -> tuple[np.ndarray, np.ndarray]:
    """The answer spans' sorted keys and their vectors (memory-mapped); empty when the build
    has none (an older format)."""
    try:
        keys = np.load(build / SPAN_KEYS, mmap_mode="r", allow_pickle=False)
        vectors = np.load(build / SPAN_VECTORS, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        return np.zeros(0, dtype="S64"), np.zeros((0, 0), dtype=np.float32)
    except ValueError as exc:
        raise corrupt(build / SPAN_VECTORS, f"is unreadable ({exc})") from None
    if len(keys) != len(vectors) or keys.dtype != np.dtype("S64"):
        raise corrupt(build / SPAN_VECTORS, f"holds {len(vectors)} vectors for {len(keys)} keys")
    return keys, vectors


def load_index(index_dir: Path, model: str | None = None) -> IndexData:
    """Load the live index, checking it against its manifest and the configured model.
    The build is held (rag.holds) for as long as the returned index lives."""
    for _ in range(3):
        build = current_build(index_dir)
        if build is None:
            raise IndexNotFound(f"no index in {index_dir}; run `rag index` to build it")
        try:
            hold = hold_build(build)
        except FileNotFoundError:  # replaced and removed since CURRENT was read: again
            continue
        try:
            index = _load_build(index_dir, build, model)
        except BaseException:
            release(hold)
            raise
        weakref.finalize(index, release, hold)
        return index
    raise IndexCorrupt(f"the index in {index_dir} kept changing while loading; retry")


def _load_build(index_dir: Path, build: Path, model: str | None) -> IndexData:
    manifest = read_manifest(build)
    if model is not None and manifest.model != model:
        raise IndexMismatch(
            f"the index in {index_dir} was built with model {manifest.model!r} but the settings "
            f"say {model!r}; run `rag index` to rebuild it (or set RAG_MODEL={manifest.model})"
        )
    verify_files(build, manifest)
    chunks = read_chunks(build)
    try:
        faiss_index = read_vector_index(build / FAISS_INDEX)
    except RuntimeError:
        raise corrupt(build / FAISS_INDEX, "is unreadable") from None
    if not (len(chunks) == manifest.chunk_count == faiss_index.ntotal):
        raise IndexCorrupt(
            f"index in {build} is inconsistent ({len(chunks)} chunks, {faiss_index.ntotal} "
            f"vectors, manifest {manifest.chunk_count}); run `rag index --rebuild`"
        )
    vectors = read_vectors(build)  # header only (memory-mapped): checks shape and type
    if vectors.shape != (len(chunks), manifest.dimension) or vectors.dtype != np.float32:
        raise corrupt(build / VECTORS, f"holds {vectors.shape} {vectors.dtype} vectors")
    if faiss_index.d != manifest.dimension:
        raise IndexCorrupt(
            f"index in {build} has dimension {faiss_index.d}, manifest {manifest.dimension}; "
            "run `rag index --rebuild`"
        )
    try:
        lexical = LexicalIndex.load(build / BM25, manifest.bm25_stem, manifest.bm25_stopwords)
    except (OSError, ValueError, KeyError) as exc:
        raise corrupt(build / BM25, f"is unreadable ({type(exc).__name__})") from None
    if lexical.size != len(chunks):
        raise corrupt(build / BM25, f"holds {lexical.size} passages, not {len(chunks)}")
    span_keys, span_vectors = read_spans(build)
    if len(span_keys) and span_vectors.shape[1] != manifest.dimension:
        raise corrupt(build / SPAN_VECTORS, f"holds {span_vectors.shape[1]}-d vectors")
    return IndexData(
        build, manifest, chunks, faiss_index, vectors, span_keys, span_vectors, lexical
    )


def live_manifest(index_dir: Path) -> Manifest | None:
    """The manifest of the live build; None when there is no index, or when it cannot be
    read (the next build repairs it)."""
    try:
        build = current_build(index_dir)
        return read_manifest(build) if build is not None else None
    except RagError:
        return None


def indexed_records(index_dir: Path) -> dict[str, DocumentRecord]:
    """The documents of the live index by id, from its manifest alone."""
    build = current_build(index_dir)
    if build is None:
        raise IndexNotFound(f"no index in {index_dir}; run `rag index` to build it")
    return {d.doc_id: d for d in read_manifest(build).documents}


def indexed_documents(index_dir: Path) -> list[DocumentInfo]:
    """The documents of the live index, from its manifest alone."""
    return [d.info() for d in indexed_records(index_dir).values()]
