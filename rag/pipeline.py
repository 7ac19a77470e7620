"""The one question-answering pipeline that the CLI, the HTTP API and the harness call."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from rag.answer import (
    SCORE_SCALE_DEPTH,
    SpanScore,
    answer_of,
    best_span,
    confidence,
    score_spans,
)
from rag.build import BuildReport, build_index
from rag.chunking import Chunk
from rag.embedding import (
    Embedder,
    SentenceTransformerEmbedder,
    embed_query,
    embedder_for,
    vector_key,
)
from rag.errors import EmptyQuestion, IndexCorrupt, IndexMismatch, IndexNotFound, InvalidQuery
from rag.freshness import index_is_current
from rag.manifest import read_manifest
from rag.models import DocumentInfo, Hit, QueryResponse
from rag.onnx_encoder import export_fast_encoder
from rag.options import SearchOptions
from rag.params import settings_as_built
from rag.search import Effort, hits_of, rows_of_documents, search
from rag.settings import Settings
from rag.store import IndexData, current_build, load_index
from rag.vector_sources import Progress

LOG = logging.getLogger(__name__)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def search_options(options: SearchOptions | None, given: dict[str, Any]) -> SearchOptions:
    """`options` with the fields `given` as keywords, checked; a bad value is InvalidQuery
    with one line (k below 1, an unknown mode, a score that is not a finite number)."""
    try:
        base = options.model_dump(exclude_unset=True) if options is not None else {}
        return SearchOptions.model_validate({**base, **given})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "options"
        raise InvalidQuery(f"{where}: {error['msg']} (got {error.get('input')!r})") from None


def clean_question(question: str, max_chars: int) -> str:
    """The question stripped of surrounding space; refuse blank or over-long ones."""
    # Control characters carry no meaning for the model; they become spaces.
    text = _CONTROL.sub(" ", question).strip()
    if not text:
        raise EmptyQuestion('the question is empty: ask something, e.g. "Who is X?"')
    if len(text) > max_chars:
        raise InvalidQuery(
            f"the question is {len(text)} characters long, over the limit of {max_chars}: "
            "shorten it (or raise RAG_MAX_QUESTION_CHARS)"
        )
    return text


@dataclass
class Pipeline:
    """A loaded index and the model that embeds questions for it."""

    settings: Settings
    index: IndexData
    embedder: Embedder

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> Pipeline:
        """Load the index in `settings.index_dir`, as it was built (see rag.params)."""
        if settings.backend == "milvus":
            from rag.milvus_pipeline import MilvusPipeline

            return MilvusPipeline.open_milvus(settings, embedder)
        settings = settings_as_built(settings)
        index = load_index(settings.index_dir, model=settings.model)
        if embedder is None and settings.fast_queries:
            from rag.onnx_encoder import open_fast_embedder

            embedder = open_fast_embedder(settings.index_dir, settings.model)
        embedder = embedder or embedder_for(settings)
        # Loading the model here (not on the first question) keeps it out of took_ms and
        # checks that it produces vectors of the index's size.
        if embedder.dimension != index.manifest.dimension:
            raise IndexMismatch(
                f"model {settings.model!r} makes {embedder.dimension}-d vectors, the index holds "
                f"{index.manifest.dimension}-d ones; run `rag index --rebuild`"
            )
        pipeline = cls(settings, index, embedder)
        pipeline.self_check()
        return pipeline

    def self_check(self) -> None:
        """Answer one question end to end, so that an index that loads but cannot answer
        (an array damaged in a way no header shows) fails here, and /ready stays 503,
        rather than on a user's question."""
        try:
            self.ask("index self-check", k=1, mode="hybrid")
        except Exception as exc:  # noqa: BLE001 - any failure means the index cannot serve
            raise IndexCorrupt(
                f"the index in {self.index.path} loads but cannot answer ({type(exc).__name__}: "
                f"{exc}); run `rag index --rebuild`"
            ) from None

    def ask(
        self,
        question: str,
        options: SearchOptions | None = None,
        *,
        xq: np.ndarray | None = None,
        **given: Any,
    ) -> QueryResponse:
        """The top-k passages for `question`, each with its citation, and the answer.
        `options` (rag.options.SearchOptions, or its fields as keywords: k, doc_ids,
        min_score, mode, explain, max_per_doc) say what this call asks for; what they leave
        out comes from the settings. `xq` is the question's vector when the caller
        embedded it already (see `ask_many`)."""
        started = time.perf_counter()
        o = search_options(options, given)
        text = clean_question(question, self.settings.max_question_chars)
        mode = o.mode or self.settings.mode
        k = self.settings.top_k if o.k is None else o.k
        doc_ids, min_score, explain, max_per_doc = o.doc_ids, o.min_score, o.explain, o.max_per_doc
        if xq is None and mode != "bm25":
            xq = embed_query(self.embedder, text)
        # The answer reads the first k hits; the first SCORE_SCALE_DEPTH set its scale.
        wanted = max(k, SCORE_SCALE_DEPTH) if self.settings.answers else k
        found = self.retrieve(text, xq, wanted, mode, doc_ids, max_per_doc, min_score, explain)
        hits = found[:k]
        answer, answerable = None, None
        if self.settings.answers:
            best = self.best_span(text, hits, xq, [h.score for h in found])
            sure = confidence(best.confidence_features()) if best is not None else 0.0
            answerable = best is not None and sure >= self.settings.answer_threshold
            answer = answer_of(best, sure) if best is not None and answerable else None
            if answer is not None:  # its own pages: a passage may cross a page break
                pages = self.index.documents[answer.doc_id].pages
                update: dict[str, Any] = pages(answer.start_char, answer.end_char)
                if answer.evidence is not None:
                    evidence = answer.evidence
                    update["evidence"] = evidence.model_copy(
                        update=pages(evidence.start_char, evidence.end_char)
                    )
                answer = answer.model_copy(update=update)
        took_ms = (time.perf_counter() - started) * 1000
        return QueryResponse(
            question=text,
            mode=mode,
            hits=hits,
            answer=answer,
            answerable=answerable,
            took_ms=round(took_ms, 2),
        )

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
        """The k best distinct passages as hits: the one step a backend replaces
        (rag.milvus_pipeline)."""
        # An empty filter matches no document, as an empty set would: no hits.
        rows = rows_of_documents(self.index, doc_ids) if doc_ids is not None else None
        found = search(
            self.index,
            xq,
            text,
            k,
            mode=mode,  # type: ignore[arg-type]
            rows=rows,
            fusion=self.settings.fusion,
            max_per_doc=max_per_doc or self.settings.max_per_doc,
            effort=Effort(self.settings.hnsw_ef_search, self.settings.ivf_nprobe),
        )
        return hits_of(self.index, found, min_score, explain)

    def ask_many(
        self,
        questions: list[str],
        options: SearchOptions | None = None,
        batch_size: int = 32,
        **given: Any,
    ) -> list[QueryResponse]:
        """Answer many questions, embedding them in batches (one model call per batch)."""
        o = search_options(options, given)
        texts = [clean_question(q, self.settings.max_question_chars) for q in questions]
        responses: list[QueryResponse] = []
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            vectors = self.embedder.embed_batch(batch, "query")
            for text, xq in zip(batch, vectors, strict=True):
                responses.append(self.ask(text, o, xq=xq))
        return responses

    def best_span(
        self,
        question: str,
        hits: list[Hit],
        xq: np.ndarray | None = None,
        scores: list[float] | None = None,
    ) -> SpanScore | None:
        """The span of the top passages most likely to answer, with its features."""
        return best_span(self.score_spans(question, hits, xq, scores))

    def score_spans(
        self,
        question: str,
        hits: list[Hit],
        xq: np.ndarray | None = None,
        scores: list[float] | None = None,
    ) -> list[SpanScore]:
        """Every candidate answer span of the top passages, with its features; `scores`:
        the search's first retrieval scores, the scale of `drop` (else the hits')."""
        if not hits:
            return []
        if xq is None:
            xq = embed_query(self.embedder, question)
        return score_spans(
            question,
            xq,
            hits,
            self.span_vectors,
            self.index.lexical,
            self.passages_before,
            scores,
        )

    def passages_before(self, hit: Hit, count: int) -> list[Chunk]:
        """Up to `count` passages of the hit's document before it, nearest first: where the
        heading a passage sits under stands when the passage does not start with it. Both
        index kinds answer it (rag.store.IndexData, rag.milvus_search.MilvusIndex)."""
        ordinal = int(hit.chunk_id.rsplit("#", 1)[1])
        return self.index.passages_before(hit.doc_id, ordinal, count)

    def span_vectors(self, texts: list[str]) -> np.ndarray:
        """The vectors of these answer spans: from the index, which embedded every span of
        every passage at build time; a span it lacks (an index built without answers) is
        embedded now, as the build would have."""
        rows = self.index.span_rows([vector_key(self.index.manifest.model, t) for t in texts])
        vectors = np.zeros((len(texts), self.index.manifest.dimension), dtype=np.float32)
        found = rows >= 0
        vectors[found] = self.index.span_vectors[rows[found]]
        if not found.all():
            missing = [t for t, ok in zip(texts, found, strict=True) if not ok]
            vectors[~found] = self.embedder.embed_batch(missing, "document")
        return vectors

    def documents(self) -> list[DocumentInfo]:
        return [d.info() for d in self.index.manifest.documents]


def ensure_index(
    settings: Settings, embedder: Embedder | None = None, progress: Progress | None = None
) -> BuildReport | None:
    """Build the index when there is none or the corpus changed since (with the settings
    it was built with); None if current."""
    if settings.backend == "milvus":
        from rag.milvus_pipeline import ensure_milvus_index

        return ensure_milvus_index(settings, embedder, progress)
    settings = settings_as_built(settings)
    try:
        build = current_build(settings.index_dir)
        manifest = read_manifest(build) if build is not None else None
    except (IndexMismatch, IndexCorrupt) as exc:  # repaired by building, reusing vectors
        LOG.warning("rebuilding the index: %s", exc)
        return build_index(settings, embedder=embedder, progress=progress)
    if manifest is not None:
        if manifest.model == settings.model and index_is_current(settings, manifest):
            if settings.fast_queries and isinstance(embedder, SentenceTransformerEmbedder):
                export_fast_encoder(settings, embedder)  # once, for an index built before
            return None
        if manifest.model != settings.model:
            return None  # loading reports the mismatch: re-embedding all is the user's call
    elif not settings.corpus_dir.is_dir():
        raise IndexNotFound(
            f"no index in {settings.index_dir} and no corpus folder {settings.corpus_dir} to "
            "build one from; set RAG_CORPUS_DIR or pass --corpus"
        )
    return build_index(settings, embedder=embedder, progress=progress)
