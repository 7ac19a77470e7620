"""Building the index from the corpus, incrementally: only passages whose text (under the
same model) has no stored vector are embedded. The stages, one module each, in the one
direction data flows: corpus (rag.corpus) -> passages (rag.passages) -> vectors
(rag.vector_sources) and BM25 (rag.lexical) -> published index (rag.store)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from filelock import FileLock

from rag.chunking import CHUNKER_VERSION, Chunk, with_heading
from rag.corpus import (
    Document,
    Skipped,
    list_document_files,
    read_document,
)
from rag.embedding import Embedder, SentenceTransformerEmbedder
from rag.errors import CorpusNotFound
from rag.freshness import settings_match
from rag.lexical import LexicalIndex
from rag.manifest import DocumentRecord, Manifest
from rag.onnx_encoder import export_fast_encoder, remove_abandoned_exports
from rag.params import build_settings_of, differences
from rag.passages import answer_span_texts, index_document
from rag.publish import save_index
from rag.settings import BUILD_FIELDS, Settings
from rag.vector_cache import VectorCache
from rag.vector_index import build_vector_index, choose_type
from rag.vector_sources import Progress, VectorSources, embed_and_cache, previous_build

LOG = logging.getLogger(__name__)


@dataclass
class BuildReport:
    """What a build did, for the CLI to print and tests to check."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # The index summary: documents read per format, files skipped per reason, and the
    # files of extensions not read, per extension.
    formats: dict[str, int] = field(default_factory=dict)
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    unsupported: dict[str, int] = field(default_factory=dict)
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    spans_embedded: int = 0  # answer spans embedded (the others were reused)
    cached: int = 0  # vectors found in the vector cache (an interrupted or earlier build)
    settings_changed: dict[str, tuple] = field(default_factory=dict)  # name -> (old, new)
    seconds: float = 0.0
    build: Path | None = None
    up_to_date: bool = False


def build_lock(index_dir: Path) -> FileLock:
    """One build at a time per index folder (a second `rag index` waits)."""
    return FileLock(index_dir / ".lock")


def build_index(
    settings: Settings,
    embedder: Embedder | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> BuildReport:
    """Bring the index in `settings.index_dir` up to date with `settings.corpus_dir`.

    Vectors of passages whose text is unchanged are reused from the previous build
    (`rebuild=True` embeds everything again). The new build is published atomically.
    """
    started = time.perf_counter()
    index_dir = Path(settings.index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    report = BuildReport()
    with build_lock(index_dir):
        for staging in remove_abandoned_exports(index_dir):
            LOG.warning("removed %s, left by an interrupted model export", staging.name)
        if rebuild:
            VectorCache(index_dir).clear()
        documents: list[Document] = []
        skipped: dict[str, list[int]] = {}
        suffixes = settings.extension_list
        for stamp in list_document_files(settings.corpus_dir, suffixes, report.unsupported):
            doc = read_document(stamp, settings.corpus_dir)
            if isinstance(doc, Skipped):
                skipped[stamp.doc_id] = [stamp.size, stamp.mtime_ns]
                report.skipped_reasons[doc.reason] = report.skipped_reasons.get(doc.reason, 0) + 1
            else:
                documents.append(doc)
                report.formats[doc.format] = report.formats.get(doc.format, 0) + 1
        report.skipped = sorted(skipped)
        if not documents:
            raise CorpusNotFound(
                f"no readable document ({', '.join(suffixes)}) in {settings.corpus_dir}: add "
                "documents or point RAG_CORPUS_DIR / --corpus at the right folder"
            )

        previous = None if rebuild else previous_build(index_dir)
        old_manifest = previous.manifest if previous else None
        old = {d.doc_id: d for d in old_manifest.documents} if old_manifest else {}
        for doc in documents:
            if doc.doc_id not in old:
                report.added.append(doc.doc_id)
            elif old[doc.doc_id].sha256 != doc.sha256:
                report.changed.append(doc.doc_id)
            else:
                report.unchanged.append(doc.doc_id)
        if old_manifest is not None:
            report.settings_changed = differences(old_manifest, settings, set(BUILD_FIELDS))
        current_ids = {d.doc_id for d in documents}
        report.removed = sorted(set(old) - current_ids)

        if (
            old_manifest is not None
            and previous is not None
            and previous.live  # a damaged pointer is repaired by publishing again
            and not (report.added or report.changed or report.removed)
            and settings_match(old_manifest, settings)
            and not report.settings_changed  # e.g. the same files in another folder
            and old_manifest.skipped == skipped
            and all(old[d.doc_id].mtime_ns == d.mtime_ns for d in documents)
            and previous.intact()  # else a damaged file is repaired by publishing again
        ):
            report.up_to_date = True
            report.chunks = old_manifest.chunk_count
            if settings.fast_queries and isinstance(embedder, SentenceTransformerEmbedder):
                export_fast_encoder(settings, embedder)  # an index built before exports
            report.seconds = time.perf_counter() - started
            return report

        doc_records: list[DocumentRecord] = []
        chunks: list[Chunk] = []
        texts_by_key: dict[str, str] = {}
        for doc in documents:
            record, records, to_embed = index_document(doc, settings)
            doc_records.append(record)
            chunks.extend(records)
            texts_by_key.update(to_embed)

        if not chunks:
            raise CorpusNotFound(
                f"the documents in {settings.corpus_dir} hold no passage of text (only "
                "headings or page furniture): add documents with prose"
            )
        # Answer spans get their vectors here too, so that questions only look them up.
        span_texts = answer_span_texts(chunks, settings.model) if settings.answers else {}
        span_keys = sorted(span_texts)
        found = VectorSources()
        if previous is not None:
            if previous.vectors.shape[0] == len(previous.chunks):
                found.add((c.vector_key for c in previous.chunks), previous.vectors)
            found.add((k.decode() for k in previous.span_keys.tolist()), previous.span_vectors)
        report.reused = sum(1 for c in chunks if c.vector_key in found)
        wanted = {**texts_by_key, **span_texts}
        missing = {k: text for k, text in wanted.items() if k not in found}
        cache = VectorCache(index_dir)
        saved = cache.find(missing)
        if saved:
            found.add(saved, np.array(list(saved.values())))
            report.cached = len(saved)
            report.reused += sum(1 for c in chunks if c.vector_key in saved)
            missing = {k: text for k, text in missing.items() if k not in saved}
        report.embedded = sum(1 for k in texts_by_key if k in missing)
        report.spans_embedded = sum(k in missing and k not in texts_by_key for k in span_texts)
        if missing:
            embedder = embedder or SentenceTransformerEmbedder(settings.model)
            fresh = embed_and_cache(embedder, missing, cache, settings, progress)
            found.add(missing, fresh)
            dimension = embedder.dimension
        else:
            dimension = next(a.shape[1] for a in found.arrays if a.ndim == 2 and a.shape[1])
        vectors = found.assemble([c.vector_key for c in chunks], dimension)
        span_vectors = found.assemble(span_keys, dimension)

        index_type = choose_type(settings.index_type, len(chunks))
        faiss_index, index_params = build_vector_index(vectors, index_type, settings.hnsw_m)
        lexical = LexicalIndex.build(
            [with_heading(c.section, c.text) for c in chunks],
            settings.bm25_stem,
            settings.bm25_stopwords,
        )
        manifest = Manifest(
            model=settings.model,
            dimension=dimension,
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
            chunker_version=CHUNKER_VERSION,
            bm25_stem=settings.bm25_stem,
            bm25_stopwords=settings.bm25_stopwords,
            index_type=index_type,
            index_params=index_params,
            answer_spans=settings.answers,
            build_settings=build_settings_of(settings),
            documents=doc_records,
            skipped=skipped,
            built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            build_seconds=round(time.perf_counter() - started, 3),
        )
        report.build = save_index(
            index_dir,
            manifest,
            chunks,
            vectors,
            faiss_index,
            lexical,
            np.array(span_keys, dtype="S64"),
            span_vectors,
            {doc.sha256: doc.text for doc in documents if doc.extracted},
        )
        cache.prune(settings.vector_cache_mb * 2**20)
        cache.close()
        if settings.fast_queries and isinstance(embedder, SentenceTransformerEmbedder):
            export_fast_encoder(settings, embedder)
        report.chunks = len(chunks)
        report.seconds = time.perf_counter() - started
        return report
