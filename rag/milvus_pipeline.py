"""The pipeline over Milvus (RAG_BACKEND=milvus): the local pipeline with its retrieval step
and its span lookup answered by the Milvus collections (rag.milvus_search), and the build
that fills them (the local build, then rag.milvus_sync.sync_index)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.build import BuildReport, build_index
from rag.embedding import Embedder, embedder_for, vector_key
from rag.errors import BackendUnavailable, IndexCorrupt, IndexMismatch
from rag.milvus_search import MilvusIndex, search_milvus
from rag.milvus_store import (
    SAME_INDEX,
    SCHEMA_VERSION,
    Collections,
    connect,
    milvus_uri,
    read_stored,
    require_stored,
    unavailable,
)
from rag.milvus_sync import SyncReport, sync_index
from rag.models import Hit
from rag.pipeline import Pipeline, ensure_index
from rag.search import hits_of, require_documents
from rag.settings import Settings
from rag.store import current_build, live_manifest
from rag.vector_sources import Progress

LOG = logging.getLogger(__name__)


def _local(settings: Settings) -> Settings:
    """The same settings for the local build that stages the Milvus one."""
    return settings.model_copy(update={"backend": "local"})


def _milvus_errors() -> tuple[type[BaseException], ...]:
    from pymilvus.exceptions import MilvusException

    return (MilvusException, ConnectionError, TimeoutError)


@dataclass
class MilvusBuildReport(BuildReport):
    """A build report with what the sync to Milvus changed."""

    milvus: SyncReport | None = None


def build_milvus_index(
    settings: Settings,
    embedder: Embedder | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> MilvusBuildReport:
    """Build the local index (reading, chunking and embedding only what changed), then bring
    the Milvus collections in line with it by document content hash. Milvus is reached
    first, so an unreachable URI fails before minutes of embedding."""
    client = connect(settings)
    report = build_index(_local(settings), embedder=embedder, rebuild=rebuild, progress=progress)
    build = report.build or current_build(settings.index_dir)
    if build is None:  # build_index always publishes or finds a build; say so if not
        raise IndexCorrupt(f"no build in {settings.index_dir} to send to Milvus")
    sync = sync_index(settings, build, client)
    LOG.info(
        "milvus %s: %d passages written, %d deleted, %d spans added, %d removed",
        sync.uri, sync.passages_written, sync.passages_deleted, sync.spans_added,
        sync.spans_removed,
    )  # fmt: skip
    return MilvusBuildReport(**vars(report), milvus=sync)


def _in_step(stored_manifest: Any, local_manifest: Any) -> bool:
    """Whether Milvus holds the local build: same documents (content and records) and
    build parameters."""

    def records(m: Any) -> list[dict]:
        return [d.model_dump(mode="json") for d in m.documents]

    return (
        records(stored_manifest) == records(local_manifest)
        and stored_manifest.build_settings == local_manifest.build_settings
        and all(
            getattr(stored_manifest, n, None) == getattr(local_manifest, n, None)
            for n in SAME_INDEX
        )
    )


def ensure_milvus_index(
    settings: Settings, embedder: Embedder | None = None, progress: Progress | None = None
) -> MilvusBuildReport | BuildReport | None:
    """Build when Milvus lacks the index or the corpus changed since; None if current. A
    machine that only serves (no corpus folder) uses what Milvus holds."""
    client = connect(settings)
    if not Path(settings.corpus_dir).is_dir():
        require_stored(client, settings)
        return None
    report = ensure_index(_local(settings), embedder=embedder, progress=progress)
    local = live_manifest(settings.index_dir)
    try:
        stored = read_stored(client, Collections(settings.milvus_collection))
    except _milvus_errors() as exc:
        raise unavailable(settings, exc) from None
    if report is None and stored is not None and local is not None:
        if stored.schema == SCHEMA_VERSION and _in_step(stored.manifest, local):
            return None
    build = current_build(settings.index_dir)
    if build is None:
        raise IndexCorrupt(f"no build in {settings.index_dir} to send to Milvus")
    sync = sync_index(settings, build, client)
    if report is None:  # the local build was current: say what it holds
        held = local.documents if local is not None else []
        formats: dict[str, int] = {}
        for record in held:
            formats[record.format] = formats.get(record.format, 0) + 1
        chunks = local.chunk_count if local is not None else 0
        report = BuildReport(up_to_date=True, build=build, chunks=chunks, formats=formats)
    return MilvusBuildReport(**vars(report), milvus=sync)


@dataclass
class MilvusPipeline(Pipeline):
    """Questions answered from Milvus; `index` is a rag.milvus_search.MilvusIndex."""

    @classmethod
    def open_milvus(cls, settings: Settings, embedder: Embedder | None = None) -> MilvusPipeline:
        """Connect, read the manifest Milvus holds, and load the model it was built with."""
        client = connect(settings)
        try:
            stored = require_stored(client, settings)
            for name in Collections(settings.milvus_collection).all():
                client.load_collection(name)  # Lite, once reopened, needs it before searching
        except _milvus_errors() as exc:
            raise unavailable(settings, exc) from None
        built = stored.manifest.build_settings
        settings = settings.model_copy(
            update={k: Path(v) if k == "corpus_dir" else v for k, v in built.items()}
        )
        if embedder is None and settings.fast_queries:
            from rag.onnx_encoder import open_fast_embedder

            embedder = open_fast_embedder(settings.index_dir, settings.model)
        embedder = embedder or embedder_for(settings)
        if embedder.dimension != stored.manifest.dimension:
            raise IndexMismatch(
                f"model {settings.model!r} makes {embedder.dimension}-d vectors, the Milvus "
                f"index holds {stored.manifest.dimension}-d ones; rebuild it"
            )
        label = Path(f"{milvus_uri(settings)}#{settings.milvus_collection}")
        index = MilvusIndex(client, Collections(settings.milvus_collection), stored, label)
        pipeline = cls(settings, index, embedder)  # type: ignore[arg-type]
        pipeline.self_check()
        return pipeline

    def self_check(self) -> None:
        """As the local pipeline's, but Milvus unreachable is said as such (503), not as a
        damaged index."""
        try:
            self.ask("index self-check", k=1, mode="hybrid")
        except BackendUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure means the index cannot serve
            raise IndexCorrupt(
                f"the Milvus index {self.index.path} loads but cannot answer "
                f"({type(exc).__name__}: {exc}); rebuild it with `rag index --rebuild`"
            ) from None

    def ask(self, question: str, options: Any = None, *, xq: Any = None, **given: Any) -> Any:
        """rag.pipeline.Pipeline.ask. When Milvus fails, connect again once and retry (a
        restarted Milvus Lite listens on another port; a server's client reconnects by
        itself); when that fails too, BackendUnavailable (the API's 503)."""
        try:
            return super().ask(question, options, xq=xq, **given)
        except _milvus_errors() as exc:
            first = exc
        try:
            self.reconnect()
            return super().ask(question, options, xq=xq, **given)
        except BackendUnavailable:
            raise  # says the URI and what to do
        except _milvus_errors():
            raise unavailable(self.settings, first) from None

    def reconnect(self) -> None:
        """A fresh client for the same URI, swapped in with one assignment per holder."""
        index: MilvusIndex = self.index  # type: ignore[assignment]
        client = connect(self.settings, fresh=True)
        for name in index.names.all():
            client.load_collection(name)
        index.client = client
        index.lexical.client = client

    def retrieve(
        self,
        text: str,
        xq: np.ndarray | None,
        k: int,
        mode: str,
        doc_ids: list[str] | None,
        max_per_doc: int | None,
        min_score: float | None,
        explain: bool,
    ) -> list[Hit]:
        index: MilvusIndex = self.index  # type: ignore[assignment]
        require_documents(index.documents, doc_ids or [])
        view, found = search_milvus(
            index, xq, text, k, mode=mode,  # type: ignore[arg-type]
            doc_ids=doc_ids, fusion=self.settings.fusion,
            max_per_doc=max_per_doc or self.settings.max_per_doc,
        )  # fmt: skip
        return hits_of(view, found, min_score, explain)

    def span_vectors(self, texts: list[str]) -> np.ndarray:
        """Answer-span vectors from the spans collection; one it lacks is embedded now."""
        index: MilvusIndex = self.index  # type: ignore[assignment]
        keys = [vector_key(index.manifest.model, t) for t in texts]
        stored = index.span_vectors_of(keys)
        vectors = np.zeros((len(texts), index.manifest.dimension), dtype=np.float32)
        missing = [i for i, key in enumerate(keys) if key not in stored]
        for i, key in enumerate(keys):
            if key in stored:
                vectors[i] = stored[key]
        if missing:
            vectors[missing] = self.embedder.embed_batch([texts[i] for i in missing], "document")
        return vectors
