"""The manifest of a build: what it was built from, its documents and passages' records,
and the size and checksum of every file, written last and read first."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import blake3
from pydantic import BaseModel, ConfigDict, Field

from rag.errors import IndexCorrupt, IndexMismatch
from rag.models import DocumentInfo
from rag.readers.base import page_of

# 2: BM25 index beside the vectors; 3: answer span vectors; 4: file checksums, character
# checkpoints of each document; 5: documents of other formats, their extracted text stored
FORMAT_VERSION = 5
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
VECTORS = "vectors.npy"
FAISS_INDEX = "faiss.index"
SPAN_KEYS = "span_keys.npy"
SPAN_VECTORS = "span_vectors.npy"
BM25 = "bm25"  # folder written by bm25s
TEXTS = "texts"  # folder of extracted texts, `<sha256 of the file>.txt` (rag.readers)


class FileEntry(BaseModel):
    """An index file as written: its size and BLAKE3 checksum (hex)."""

    model_config = ConfigDict(frozen=True)

    bytes: int
    blake3: str


class DocumentRecord(DocumentInfo):
    """A document as indexed (the public `DocumentInfo`), with what reading it back and
    deciding staleness need."""

    model_config = ConfigDict(frozen=True)

    mtime_ns: int
    chars: int = 0
    # (character, byte, line) where reading may start: see rag.file_text.char_checkpoints
    checkpoints: list[tuple[int, int, int]] = Field(default_factory=list)
    # Paged formats: where each page starts in the extracted text.
    page_starts: list[int] = Field(default_factory=list)

    @property
    def text_file(self) -> str | None:
        """The build's copy of the extracted text (None: the file is its own text)."""
        return None if self.format == "text" else f"{TEXTS}/{self.sha256}.txt"

    def page_of(self, offset: int) -> int | None:
        return page_of(self.page_starts, offset)

    def pages(self, start: int, end: int) -> dict[str, int | None]:
        """`page` and `page_end` of the span text[start:end]: the pages of its first and last
        characters (a PDF passage may run across a page break)."""
        return {"page": self.page_of(start), "page_end": self.page_of(max(start, end - 1))}

    def info(self) -> DocumentInfo:
        return DocumentInfo(**self.model_dump(include=set(DocumentInfo.model_fields)))


class Manifest(BaseModel):
    """What a build holds and was built from (manifest.json, written last, read first)."""

    model: str
    dimension: int
    chunk_size: int
    chunk_overlap: int
    chunker_version: int
    keyword_version: int = 1  # rag.lexical.KEYWORD_VERSION; older manifests had 1
    reader_version: int = 1  # rag.readers.READER_VERSION; older manifests had 1
    embed_version: int = 1  # rag.model_text.EMBED_TEXT_VERSION; older manifests had 1
    bm25_stem: bool
    bm25_stopwords: bool
    documents: list[DocumentRecord]
    skipped: dict[str, list[int]] = Field(default_factory=dict)  # doc_id -> [size, mtime_ns]
    skip_reasons: dict[str, str] = Field(default_factory=dict)  # doc_id -> why (empty before)
    format_version: int = FORMAT_VERSION
    index_type: str = "flat"  # see rag.vector_index
    index_params: dict[str, int] = Field(default_factory=dict)
    answer_spans: bool = True  # span vectors were built (settings.answers)
    chunk_count: int = 0
    built_at: str = ""
    build_seconds: float = 0.0
    files: dict[str, FileEntry] = Field(default_factory=dict)  # file name -> size, checksum
    # The settings the index was built from (rag.settings.BUILD_FIELDS), as JSON values.
    build_settings: dict[str, Any] = Field(default_factory=dict)

    def not_indexed(self, doc_id: str) -> str:
        """Why `doc_id` has no passages: a file the build skipped says why (asked for by
        name, "not in the index" alone sent users looking for a typo)."""
        if doc_id in self.skipped:
            why = self.skip_reasons.get(doc_id, "see the warnings of `rag index`")
            return f"{doc_id!r} is not in the index: it was skipped when it was built ({why})"
        return f"no document {doc_id!r} in the index"

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["counts"] = {"documents": len(self.documents), "chunks": self.chunk_count}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        data = {k: v for k, v in data.items() if k != "counts"}
        return cls.model_validate(data)


def corrupt(path: Path, problem: str) -> IndexCorrupt:
    return IndexCorrupt(
        f"index file {path} {problem}; run `rag index` to repair it (intact vectors are reused)"
    )


def read_manifest(build: Path) -> Manifest:
    """The manifest of a build. A build is never changed once written, so a manifest read
    before (same file, same mtime and size) is not parsed again: one `rag ask` consults it
    several times, and a large corpus's manifest takes a while to validate."""
    path = build / MANIFEST
    try:
        st = path.stat()
    except FileNotFoundError:
        raise corrupt(path, "is missing") from None
    return _parse_manifest(path, st.st_ino, st.st_mtime_ns, st.st_size).model_copy()


@functools.lru_cache(maxsize=8)
def _parse_manifest(path: Path, inode: int, mtime_ns: int, size: int) -> Manifest:
    build = path.parent
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        version = data.get("format_version") if isinstance(data, dict) else None
        if version != FORMAT_VERSION:
            raise IndexMismatch(
                f"index format {version} is not the supported {FORMAT_VERSION}; "
                "run `rag index` to rebuild it (vectors already embedded are reused)"
            )
        return Manifest.from_json(data)
    except FileNotFoundError:
        raise corrupt(build / MANIFEST, "is missing") from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # ValidationError too
        raise corrupt(build / MANIFEST, f"is unreadable ({type(exc).__name__})") from None


def checksum(path: Path) -> str:
    """BLAKE3 of a file, hashed with all cores from a memory map (~5 GB/s on 2 cores, see
    bench/RESOURCES.md), so a whole index is checked in about a second per 5 GB."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    if path.stat().st_size:
        hasher.update_mmap(path)
    return hasher.hexdigest()


def verify_files(build: Path, manifest: Manifest, names: Iterable[str] | None = None) -> None:
    """Check the files of a build (all, or `names`) against the manifest's sizes and
    checksums; IndexCorrupt names the first that differs."""
    for name in manifest.files if names is None else names:
        entry = manifest.files.get(name)
        path = build / name
        if entry is None:
            raise corrupt(path, "is not listed in the manifest")
        if not path.is_file():
            raise corrupt(path, "is missing")
        size = path.stat().st_size
        if size != entry.bytes:
            raise corrupt(path, f"has {size} bytes, the manifest says {entry.bytes} (truncated?)")
        if checksum(path) != entry.blake3:
            raise corrupt(path, "does not match its checksum (damaged on disk)")
