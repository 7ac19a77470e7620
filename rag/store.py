"""The index on disk: a folder of named files, written by one `save_index`, read by one
`load_index`, published atomically.

    index/
      CURRENT                 name of the live build, replaced atomically (os.replace)
      build-<time>-<id>/      one complete build
        manifest.json         format, model, chunking, documents with sha256, counts
        chunks.jsonl          one passage a line, with its citation
        vectors.npy           float32 passage vectors, row i = chunk i (the reuse cache)
        faiss.index           the dense search structure (flat, HNSW or IVF-PQ)
        bm25/                 the keyword index (bm25s) over the same passages
        span_keys.npy         sorted vector keys of the answer spans (rag.answer)
        span_vectors.npy      their vectors (float16: half the size, cosines to 1e-3)

A build is written into a new folder first; only when every file is on disk does CURRENT
switch to it. A crash or kill at any moment leaves CURRENT naming a complete build.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.duplicates import duplicate_groups
from rag.errors import IndexCorrupt, IndexMismatch, IndexNotFound
from rag.lexical import LexicalIndex
from rag.models import DocumentInfo
from rag.vector_index import read_vector_index, write_vector_index

LOG = logging.getLogger(__name__)

FORMAT_VERSION = 3  # 2: BM25 index beside the vectors; 3: answer span vectors
POINTER = "CURRENT"
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
VECTORS = "vectors.npy"
FAISS_INDEX = "faiss.index"
SPAN_KEYS = "span_keys.npy"
SPAN_VECTORS = "span_vectors.npy"
BM25 = "bm25"  # folder written by bm25s
_BUILD_PREFIX = "build-"


@dataclass(frozen=True)
class DocumentRecord:
    doc_id: str
    title: str
    sha256: str
    size: int
    mtime_ns: int
    chunks: int

    def info(self) -> DocumentInfo:
        return DocumentInfo(
            doc_id=self.doc_id,
            title=self.title,
            size=self.size,
            chunks=self.chunks,
            sha256=self.sha256,
        )


@dataclass(frozen=True)
class ChunkRecord:
    chunk_id: str
    doc_id: str
    ordinal: int
    start: int
    end: int
    line_start: int
    line_end: int
    section: str
    text: str
    vector_key: str  # sha256 of (model, embedded text): equal keys share a vector


@dataclass
class Manifest:
    model: str
    dimension: int
    chunk_size: int
    chunk_overlap: int
    chunker_version: int
    bm25_stem: bool
    bm25_stopwords: bool
    documents: list[DocumentRecord]
    skipped: dict[str, list[int]] = field(default_factory=dict)  # doc_id -> [size, mtime_ns]
    format_version: int = FORMAT_VERSION
    index_type: str = "flat"  # see rag.vector_index
    index_params: dict[str, int] = field(default_factory=dict)
    answer_spans: bool = True  # span vectors were built (settings.answers)
    chunk_count: int = 0
    built_at: str = ""
    build_seconds: float = 0.0
    files: dict[str, int] = field(default_factory=dict)  # file name -> bytes

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["counts"] = {"documents": len(self.documents), "chunks": self.chunk_count}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        data = dict(data)
        data.pop("counts", None)
        data["documents"] = [DocumentRecord(**d) for d in data["documents"]]
        if data.get("index_type") == "flat-ip":  # the name before other structures came
            data["index_type"] = "flat"
        return cls(**data)


@dataclass
class IndexData:
    """A loaded index: everything a query needs (vectors and FAISS file memory-mapped)."""

    path: Path
    manifest: Manifest
    chunks: list[ChunkRecord]
    faiss_index: Any
    vectors: np.ndarray  # memory-mapped: exact scores for filtered and approximate search
    span_keys: np.ndarray  # sorted vector keys of the answer spans, memory-mapped
    span_vectors: np.ndarray
    lexical: LexicalIndex | None = None
    ef_search: int = 256  # query-time knobs of HNSW and IVF (from the settings)
    nprobe: int = 32
    documents: dict[str, DocumentRecord] = field(init=False)
    duplicates: dict[int, list[int]] = field(init=False)
    rows_by_doc: dict[str, list[int]] = field(init=False)

    def span_rows(self, keys: list[str]) -> np.ndarray:
        """Rows of `span_vectors` for these vector keys; -1 where a key is not stored."""
        wanted = np.array(keys, dtype="S64")
        if not len(self.span_keys):
            return np.full(len(keys), -1)
        at = np.searchsorted(self.span_keys, wanted).clip(max=len(self.span_keys) - 1)
        return np.where(self.span_keys[at] == wanted, at, -1)

    def __post_init__(self) -> None:
        self.documents = {d.doc_id: d for d in self.manifest.documents}
        self.duplicates = duplicate_groups([c.text for c in self.chunks])
        self.rows_by_doc = {}
        for row, chunk in enumerate(self.chunks):
            self.rows_by_doc.setdefault(chunk.doc_id, []).append(row)


def _corrupt(path: Path, problem: str) -> IndexCorrupt:
    return IndexCorrupt(f"index file {path} {problem}; run `rag index --rebuild`")


def current_build(index_dir: Path) -> Path | None:
    """The live build folder, or None when no index was ever published here."""
    pointer = Path(index_dir) / POINTER
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IndexCorrupt(f"cannot read {pointer} ({exc}); run `rag index --rebuild`") from None
    if not name.startswith(_BUILD_PREFIX) or "/" in name:
        raise IndexCorrupt(f"{pointer} names no build ({name!r}); run `rag index --rebuild`")
    return Path(index_dir) / name


def read_manifest(build: Path) -> Manifest:
    try:
        data = json.loads((build / MANIFEST).read_text(encoding="utf-8"))
        manifest = Manifest.from_json(data)
    except FileNotFoundError:
        raise _corrupt(build / MANIFEST, "is missing") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise _corrupt(build / MANIFEST, f"is unreadable ({type(exc).__name__})") from None
    if manifest.format_version != FORMAT_VERSION:
        raise IndexMismatch(
            f"index format {manifest.format_version} is not the supported {FORMAT_VERSION}; "
            "run `rag index --rebuild`"
        )
    return manifest


def read_chunks(build: Path) -> list[ChunkRecord]:
    try:
        with open(build / CHUNKS, encoding="utf-8") as fh:
            return [ChunkRecord(**json.loads(line)) for line in fh]
    except FileNotFoundError:
        raise _corrupt(build / CHUNKS, "is missing") from None
    except (ValueError, TypeError) as exc:
        raise _corrupt(build / CHUNKS, f"is unreadable ({type(exc).__name__})") from None


def read_vectors(build: Path, mmap: bool = True) -> np.ndarray:
    """Stored passage vectors; memory-mapped so that reuse reads only the rows it needs."""
    try:
        return np.load(build / VECTORS, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise _corrupt(build / VECTORS, "is missing") from None
    except ValueError as exc:
        raise _corrupt(build / VECTORS, f"is unreadable ({exc})") from None


def read_spans(build: Path) -> tuple[np.ndarray, np.ndarray]:
    """The answer spans' sorted keys and their vectors (memory-mapped); empty when the build
    has none (an older format)."""
    try:
        keys = np.load(build / SPAN_KEYS, mmap_mode="r", allow_pickle=False)
        vectors = np.load(build / SPAN_VECTORS, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        return np.zeros(0, dtype="S64"), np.zeros((0, 0), dtype=np.float32)
    except ValueError as exc:
        raise _corrupt(build / SPAN_VECTORS, f"is unreadable ({exc})") from None
    if len(keys) != len(vectors) or keys.dtype != np.dtype("S64"):
        raise _corrupt(build / SPAN_VECTORS, f"holds {len(vectors)} vectors for {len(keys)} keys")
    return keys, vectors


def _check_files(build: Path, manifest: Manifest) -> None:
    for name, size in manifest.files.items():
        path = build / name
        if not path.is_file():
            raise _corrupt(path, "is missing")
        if path.stat().st_size != size:
            raise _corrupt(
                path, f"has {path.stat().st_size} bytes, the manifest says {size} (truncated?)"
            )


def load_index(index_dir: Path, model: str | None = None) -> IndexData:
    """Load the live index, checking it against its manifest and the configured model."""
    build = current_build(index_dir)
    if build is None:
        raise IndexNotFound(f"no index in {index_dir}; run `rag index` to build it")
    manifest = read_manifest(build)
    if model is not None and manifest.model != model:
        raise IndexMismatch(
            f"the index in {index_dir} was built with model {manifest.model!r} but the settings "
            f"say {model!r}; run `rag index` to rebuild it (or set RAG_MODEL={manifest.model})"
        )
    _check_files(build, manifest)
    chunks = read_chunks(build)
    try:
        faiss_index = read_vector_index(build / FAISS_INDEX)
    except RuntimeError:
        raise _corrupt(build / FAISS_INDEX, "is unreadable") from None
    if not (len(chunks) == manifest.chunk_count == faiss_index.ntotal):
        raise IndexCorrupt(
            f"index in {build} is inconsistent ({len(chunks)} chunks, {faiss_index.ntotal} "
            f"vectors, manifest {manifest.chunk_count}); run `rag index --rebuild`"
        )
    vectors = read_vectors(build)  # header only (memory-mapped): checks shape and type
    if vectors.shape != (len(chunks), manifest.dimension) or vectors.dtype != np.float32:
        raise _corrupt(build / VECTORS, f"holds {vectors.shape} {vectors.dtype} vectors")
    if faiss_index.d != manifest.dimension:
        raise IndexCorrupt(
            f"index in {build} has dimension {faiss_index.d}, manifest {manifest.dimension}; "
            "run `rag index --rebuild`"
        )
    try:
        lexical = LexicalIndex.load(build / BM25, manifest.bm25_stem, manifest.bm25_stopwords)
    except (OSError, ValueError, KeyError) as exc:
        raise _corrupt(build / BM25, f"is unreadable ({type(exc).__name__})") from None
    if lexical.size != len(chunks):
        raise _corrupt(build / BM25, f"holds {lexical.size} passages, not {len(chunks)}")
    span_keys, span_vectors = read_spans(build)
    if len(span_keys) and span_vectors.shape[1] != manifest.dimension:
        raise _corrupt(build / SPAN_VECTORS, f"holds {span_vectors.shape[1]}-d vectors")
    return IndexData(
        build, manifest, chunks, faiss_index, vectors, span_keys, span_vectors, lexical
    )


def indexed_documents(index_dir: Path) -> list[DocumentInfo]:
    """The documents of the live index, from its manifest alone."""
    build = current_build(index_dir)
    if build is None:
        raise IndexNotFound(f"no index in {index_dir}; run `rag index` to build it")
    return [d.info() for d in read_manifest(build).documents]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, write) -> int:
    with open(path, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    return path.stat().st_size


def save_index(
    index_dir: Path,
    manifest: Manifest,
    chunks: list[ChunkRecord],
    vectors: np.ndarray,
    faiss_index: Any,
    lexical: LexicalIndex,
    span_keys: np.ndarray,
    span_vectors: np.ndarray,
) -> Path:
    """Write a complete build into a new folder, then switch CURRENT to it."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    build = index_dir / f"{_BUILD_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}"
    build.mkdir()

    def write_chunks(fh) -> None:
        for chunk in chunks:
            fh.write(json.dumps(asdict(chunk), ensure_ascii=False).encode("utf-8") + b"\n")

    files = {
        CHUNKS: _write_file(build / CHUNKS, write_chunks),
        VECTORS: _write_file(build / VECTORS, lambda fh: np.save(fh, vectors)),
        SPAN_KEYS: _write_file(build / SPAN_KEYS, lambda fh: np.save(fh, span_keys)),
        SPAN_VECTORS: _write_file(
            build / SPAN_VECTORS, lambda fh: np.save(fh, span_vectors.astype(np.float16))
        ),
    }
    write_vector_index(faiss_index, build / FAISS_INDEX)  # streamed to disk, no copy in memory
    with open(build / FAISS_INDEX, "rb+") as fh:
        os.fsync(fh.fileno())
    files[FAISS_INDEX] = (build / FAISS_INDEX).stat().st_size
    lexical.save(build / BM25)
    for path in sorted((build / BM25).iterdir()):
        files[f"{BM25}/{path.name}"] = path.stat().st_size
    manifest.files = files
    manifest.chunk_count = len(chunks)
    body = json.dumps(manifest.to_json(), indent=2, ensure_ascii=False).encode("utf-8")
    _write_file(build / MANIFEST, lambda fh: fh.write(body))
    _fsync_dir(build)
    publish_build(index_dir, build)
    return build


def publish_build(index_dir: Path, build: Path) -> None:
    """Point CURRENT at `build` in one atomic rename, then drop builds no reader needs."""
    previous = current_build(index_dir)
    pointer_tmp = index_dir / f".{POINTER}.{uuid.uuid4().hex[:8]}.tmp"
    _write_file(pointer_tmp, lambda fh: fh.write(build.name.encode("utf-8")))
    os.replace(pointer_tmp, index_dir / POINTER)
    _fsync_dir(index_dir)
    remove_stale_builds(index_dir, keep={build, previous})


def remove_stale_builds(index_dir: Path, keep: set[Path | None]) -> None:
    """Remove builds but those in `keep` (the live one and the one before it, which a
    reader may have opened just now), with what interrupted builds left behind.
    Callers hold the build lock, so no other build is being written meanwhile."""
    for path in index_dir.iterdir():
        if path.is_dir() and path.name.startswith(_BUILD_PREFIX) and path not in keep:
            shutil.rmtree(path, ignore_errors=True)
    for tmp in index_dir.glob(f".{POINTER}.*.tmp"):
        tmp.unlink(missing_ok=True)
