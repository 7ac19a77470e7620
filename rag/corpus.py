"""Reading the corpus: which files are documents, their ids, their text exactly as on disk."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from rag.errors import CorpusNotFound, DocumentNotFound

LOG = logging.getLogger(__name__)

DOCUMENT_SUFFIXES = (".txt", ".md")
# A NUL byte in the first block is the usual sign of a binary file (as git and grep decide).
_BINARY_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class Document:
    """One corpus file. `text` is its bytes decoded as UTF-8, newlines untouched."""

    doc_id: str
    path: Path
    text: str
    sha256: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FileStamp:
    """What tells, without reading a file, whether it may have changed since indexing."""

    doc_id: str
    path: Path
    size: int
    mtime_ns: int


def decode_document_bytes(data: bytes) -> str:
    """Decode as citations expect: UTF-8, invalid bytes replaced by U+FFFD, nothing else changed."""
    return data.decode("utf-8", errors="replace")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def list_document_files(corpus_dir: Path) -> list[FileStamp]:
    """Every .txt/.md file under `corpus_dir`, sorted by doc_id.

    Hidden files and folders are skipped. Symlinked folders are followed once: a folder
    whose real path was already visited (a symlink loop) is not entered again.
    """
    root = Path(corpus_dir)
    if not root.is_dir():
        raise CorpusNotFound(
            f"corpus folder not found: {root} (set RAG_CORPUS_DIR or pass --corpus)"
        )
    stamps: list[FileStamp] = []
    seen_dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:
            LOG.warning("skipped %s: symlink loop", dirpath)
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(DOCUMENT_SUFFIXES):
                continue
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError as exc:
                LOG.warning("skipped %s: %s", path, exc.strerror or exc)
                continue
            if not path.is_file():
                continue
            doc_id = path.relative_to(root).as_posix()
            stamps.append(FileStamp(doc_id, path, st.st_size, st.st_mtime_ns))
    stamps.sort(key=lambda s: s.doc_id)
    return stamps


def read_document(stamp: FileStamp) -> Document | None:
    """Read one file; None (with a one-line warning) when it is not a usable text document."""
    try:
        data = stamp.path.read_bytes()
    except OSError as exc:
        LOG.warning("skipped %s: cannot read (%s)", stamp.doc_id, exc.strerror or exc)
        return None
    if not data.strip():
        LOG.warning("skipped %s: empty file", stamp.doc_id)
        return None
    if b"\x00" in data[:_BINARY_SNIFF_BYTES]:
        LOG.warning("skipped %s: binary file (contains NUL bytes)", stamp.doc_id)
        return None
    text = decode_document_bytes(data)
    if "\ufffd" in text and "\ufffd".encode() not in data:
        LOG.warning(
            "%s is not valid UTF-8: undecodable bytes replaced by U+FFFD (re-save it as UTF-8)",
            stamp.doc_id,
        )
    return Document(
        doc_id=stamp.doc_id,
        path=stamp.path,
        text=text,
        sha256=sha256_bytes(data),
        size=len(data),
        mtime_ns=stamp.mtime_ns,
    )


def load_corpus(corpus_dir: Path) -> list[Document]:
    """All usable documents under `corpus_dir`, in doc_id order."""
    documents = [doc for s in list_document_files(corpus_dir) if (doc := read_document(s))]
    return documents


def resolve_doc_path(corpus_dir: Path, doc_id: str) -> Path:
    """The file of `doc_id`, refusing ids that would leave the corpus folder.

    The check is on the id itself (no absolute path, no `..`, no hidden part, a document
    suffix), so that symlinked folders the loader followed still resolve.
    """
    parts = doc_id.split("/")
    unsafe = (
        not doc_id
        or "\x00" in doc_id
        or "\\" in doc_id
        or doc_id.startswith("/")
        or any(part in ("", ".", "..") or part.startswith(".") for part in parts)
        or not doc_id.lower().endswith(DOCUMENT_SUFFIXES)
    )
    path = Path(corpus_dir).joinpath(*parts)
    if unsafe or not path.is_file():
        raise DocumentNotFound(f"no document {doc_id!r} in the corpus (see `rag docs`)")
    return path


def read_document_text(corpus_dir: Path, doc_id: str) -> tuple[str, str]:
    """(text, sha256) of a document as it is on disk now, for resolving citations."""
    data = resolve_doc_path(corpus_dir, doc_id).read_bytes()
    return decode_document_bytes(data), sha256_bytes(data)
