"""Writing a build and publishing it: every file written and synced in a new folder, then
CURRENT switched to it in one atomic rename, then the builds no reader holds removed
(the layout is described in rag.store)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from rag.chunking import Chunk
from rag.errors import IndexCorrupt
from rag.holds import holds_supported, release, unheld
from rag.lexical import LexicalIndex
from rag.manifest import (
    BM25,
    CHUNKS,
    FAISS_INDEX,
    MANIFEST,
    SPAN_KEYS,
    SPAN_VECTORS,
    TEXTS,
    VECTORS,
    FileEntry,
    Manifest,
    checksum,
)
from rag.store import BUILD_PREFIX, POINTER, current_build
from rag.vector_index import write_vector_index

LOG = logging.getLogger(__name__)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, write: Callable[[BinaryIO], object]) -> None:
    with open(path, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())


def save_index(
    index_dir: Path,
    manifest: Manifest,
    chunks: list[Chunk],
    vectors: np.ndarray,
    faiss_index: Any,
    lexical: LexicalIndex,
    span_keys: np.ndarray,
    span_vectors: np.ndarray,
    texts: dict[str, str] | None = None,
) -> Path:
    """Write a complete build into a new folder, then switch CURRENT to it. `texts`: the
    extracted text of each document that has one, by the file's sha256 (what citations
    into it are read from, rag.sources)."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    build = index_dir / f"{BUILD_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}"
    build.mkdir()

    def write_chunks(fh: BinaryIO) -> None:
        for chunk in chunks:
            fh.write(json.dumps(asdict(chunk), ensure_ascii=False).encode("utf-8") + b"\n")

    _write_file(build / CHUNKS, write_chunks)
    _write_file(build / VECTORS, lambda fh: np.save(fh, vectors))
    _write_file(build / SPAN_KEYS, lambda fh: np.save(fh, span_keys))
    _write_file(build / SPAN_VECTORS, lambda fh: np.save(fh, span_vectors.astype(np.float16)))
    write_vector_index(faiss_index, build / FAISS_INDEX)  # streamed to disk, no copy in memory
    with open(build / FAISS_INDEX, "rb+") as fh:
        os.fsync(fh.fileno())
    lexical.save(build / BM25)
    names = [CHUNKS, VECTORS, SPAN_KEYS, SPAN_VECTORS, FAISS_INDEX]
    names += [f"{BM25}/{p.name}" for p in sorted((build / BM25).iterdir())]
    if texts:
        (build / TEXTS).mkdir()
        for sha256, text in sorted(texts.items()):
            data = text.encode("utf-8")
            _write_file(build / TEXTS / f"{sha256}.txt", lambda fh, data=data: fh.write(data))
            names.append(f"{TEXTS}/{sha256}.txt")
    manifest.files = {
        name: FileEntry(bytes=(build / name).stat().st_size, blake3=checksum(build / name))
        for name in names
    }
    manifest.chunk_count = len(chunks)
    body = json.dumps(manifest.to_json(), indent=2, ensure_ascii=False).encode("utf-8")
    _write_file(build / MANIFEST, lambda fh: fh.write(body))
    _fsync_dir(build)
    publish_build(index_dir, build)
    return build


def publish_build(index_dir: Path, build: Path) -> None:
    """Point CURRENT at `build` in one atomic rename, then drop builds no reader needs."""
    try:
        previous = current_build(index_dir)
    except IndexCorrupt:  # a damaged pointer is what this publish repairs
        previous = None
    pointer_tmp = index_dir / f".{POINTER}.{uuid.uuid4().hex[:8]}.tmp"
    _write_file(pointer_tmp, lambda fh: fh.write(build.name.encode("utf-8")))
    os.replace(pointer_tmp, index_dir / POINTER)
    _fsync_dir(index_dir)
    remove_stale_builds(index_dir, keep={build, previous})


def remove_stale_builds(index_dir: Path, keep: set[Path | None]) -> None:
    """Remove builds but those in `keep` (the live one and the one before it, the fallback
    of a damaged pointer) and those a reader holds (rag.holds), with what interrupted
    builds left behind. Callers hold the build lock, so no build is being written."""
    for path in index_dir.iterdir():
        if path.is_dir() and path.name.startswith(BUILD_PREFIX) and path not in keep:
            fd = unheld(path)
            if fd is None and holds_supported():
                LOG.info("kept %s: a reader still uses it", path.name)
                continue
            shutil.rmtree(path, ignore_errors=True)
            if fd is not None and fd >= 0:
                release(fd)
    for tmp in index_dir.glob(f".{POINTER}.*.tmp"):
        tmp.unlink(missing_ok=True)
