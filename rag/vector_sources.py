"""Where each vector of a build comes from: the previous build (once its checksums pass),
the vector cache (an interrupted or earlier build), or the model, in that order."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rag.chunking import Chunk
from rag.embedding import Embedder, embed_documents, embedder_for
from rag.errors import IndexCorrupt, IndexMismatch, RagError
from rag.manifest import (
    CHUNKS,
    SPAN_KEYS,
    SPAN_VECTORS,
    VECTORS,
    Manifest,
    read_manifest,
    verify_files,
)
from rag.settings import Settings
from rag.store import current_build, newest_complete_build, read_chunks, read_spans, read_vectors
from rag.vector_cache import VectorCache

LOG = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total) texts embedded


@dataclass
class PreviousBuild:
    manifest: Manifest | None  # None when unreadable (an older format): vectors still serve
    chunks: list[Chunk]
    vectors: np.ndarray
    span_keys: np.ndarray  # vector keys (bytes) of the answer spans, sorted
    span_vectors: np.ndarray
    build: Path
    live: bool = True  # False: an older intact build, the pointer being damaged

    def intact(self) -> bool:
        """Whether every file of the build (not only the reused ones) passes its checksum."""
        if self.manifest is None:
            return False
        try:
            verify_files(self.build, self.manifest)
        except RagError as exc:
            LOG.warning("%s", exc)
            return False
        return True


class VectorSources:
    """Where each needed vector is: in the previous build, the vector cache (an
    interrupted or earlier build), or just embedded. The first place a key is found wins."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self.where: dict[str, tuple[int, int]] = {}

    def add(self, keys: Iterable[str], array: np.ndarray) -> None:
        number = len(self.arrays)
        self.arrays.append(array)
        for row, key in enumerate(keys):
            self.where.setdefault(key, (number, row))

    def __contains__(self, key: str) -> bool:
        return key in self.where

    def assemble(self, keys: list[str], dimension: int) -> np.ndarray:
        vectors = np.empty((len(keys), dimension), np.float32)
        for row, key in enumerate(keys):
            number, at = self.where[key]
            vectors[row] = self.arrays[number][at]
        return vectors


def reusable_build(build: Path) -> PreviousBuild:
    """A build's passages and vectors once their checksums pass (RagError otherwise). A
    build of an older format has no checksums: its vectors, keyed by (model, text), are
    reused as they are."""
    try:
        manifest: Manifest | None = read_manifest(build)
    except IndexMismatch as exc:
        LOG.warning("%s: all documents count as added", exc)
        manifest = None
    if manifest is not None:
        verify_files(build, manifest, [CHUNKS, VECTORS, SPAN_KEYS, SPAN_VECTORS])
    chunks, vectors, (span_keys, span_vectors) = (
        read_chunks(build),
        read_vectors(build),
        read_spans(build),
    )
    return PreviousBuild(manifest, chunks, vectors, span_keys, span_vectors, build)


def previous_build(index_dir: Path) -> PreviousBuild | None:
    """The last build's passages and vectors, for reuse. When the pointer or the live
    build is damaged, the newest intact build serves instead."""
    damaged = False
    try:
        build = current_build(index_dir)
    except IndexCorrupt as exc:
        LOG.warning("%s", exc)
        build, damaged = None, True
    if build is None and not damaged:
        return None
    if build is not None:
        try:
            return reusable_build(build)
        except RagError as exc:
            LOG.warning("previous index not reusable: %s", exc)
    fallback = newest_complete_build(index_dir)
    if fallback is None or fallback == build:
        LOG.warning("no intact build to reuse: embedding everything again")
        return None
    LOG.warning("reusing the vectors of %s", fallback.name)
    return replace(reusable_build(fallback), live=False)


# Fresh vectors are committed to the vector cache at least this often (texts), so that a
# killed build loses at most a minute or so of embedding on two cores.
COMMIT_TEXTS = 2048


class VectorSupply:
    """Every vector a build wants, as documents come: found where it already is (`found`:
    the previous build; then the vector cache), else queued for the model, which embeds
    the queue whenever COMMIT_TEXTS texts wait, and commits each group to the cache as soon
    as it is embedded (a killed build loses at most one group). The model is loaded only
    when something must be embedded."""

    def __init__(
        self,
        found: VectorSources,
        cache: VectorCache,
        settings: Settings,
        embedder: Embedder | None,
        progress: Progress | None,
    ) -> None:
        self.found, self.cache, self.settings = found, cache, settings
        self.embedder, self.progress = embedder, progress
        self.queue: dict[str, str] = {}
        self.fresh: set[str] = set()  # keys embedded by this build
        self.cached = 0  # vectors found in the cache
        self.queued = 0
        self.done = 0

    def want(self, texts: dict[str, str]) -> None:
        missing = {k: t for k, t in texts.items() if k not in self.found and k not in self.queue}
        saved = self.cache.find(missing) if missing else {}
        if saved:
            self.found.add(saved, np.array(list(saved.values())))
            self.cached += len(saved)
        for key, text in missing.items():
            if key not in saved:
                self.queue[key] = text
                self.queued += 1
        while len(self.queue) >= COMMIT_TEXTS:  # whole groups only, until the end
            self._embed(COMMIT_TEXTS)

    def finish(self) -> None:
        while self.queue:
            self._embed(COMMIT_TEXTS)

    def dimension(self) -> int:
        """The vectors' width: from the vectors at hand, the model only when none is."""
        width = next((a.shape[1] for a in self.found.arrays if a.ndim == 2 and a.shape[1]), 0)
        if width:
            return width
        assert self.embedder is not None, "no vector and no model"  # invariant: see finish
        return self.embedder.dimension

    def _advance(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.queued)  # the total grows as documents come

    def _embed(self, count: int) -> None:
        """Embed the first `count` queued texts and commit them to the cache."""
        if self.embedder is None:
            self.embedder = embedder_for(self.settings)
        keys = list(itertools.islice(self.queue, count))
        texts = [self.queue.pop(key) for key in keys]
        preferred = getattr(self.embedder, "preferred_batch", None)
        batch = preferred(self.settings.batch_size) if preferred else self.settings.batch_size
        vectors = embed_documents(self.embedder, texts, batch, self._advance)
        self.cache.save(keys, vectors)
        self.found.add(keys, vectors)
        self.fresh.update(keys)
