"""Building the index from the corpus, incrementally: only passages whose text (under the
same model) has no stored vector are embedded. The stages, one module each, in the one
direction data flows: corpus (rag.corpus) -> passages (rag.passages) -> vectors
(rag.vector_sources) and BM25 (rag.lexical) -> published index (rag.store)."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from filelock import FileLock

from rag.chunking import CHUNKER_VERSION, Chunk
from rag.corpus import Document, Skipped, list_document_files
from rag.embedding import Embedder, SentenceTransformerEmbedder
from rag.errors import CorpusNotFound
from rag.extraction_cache import ExtractionCache
from rag.freshness import settings_match
from rag.lexical import KEYWORD_VERSION, LexicalIndex
from rag.manifest import DocumentRecord, Manifest
from rag.model_text import EMBED_TEXT_VERSION
from rag.onnx_encoder import export_fast_encoder, remove_abandoned_exports
from rag.params import build_settings_of, differences
from rag.passages import answer_span_texts, index_document
from rag.publish import save_index
from rag.readers import READER_VERSION, READERS
from rag.reading import read_documents
from rag.settings import BUILD_FIELDS, Settings
from rag.vector_cache import VectorCache
from rag.vector_index import build_vector_index, choose_type
from rag.vector_sources import Progress, VectorSources, VectorSupply, previous_build

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


class _Parts:
    """The passages and records of the documents cut so far, and the texts they need
    vectors for: passages (by vector key) and, with answers on, their answer spans."""

    def __init__(self) -> None:
        self.records: list[DocumentRecord] = []
        self.chunks: list[Chunk] = []
        self.passage_keys: set[str] = set()
        self.span_keys: set[str] = set()

    def add(self, doc: Document, settings: Settings) -> dict[str, str]:
        """Cut `doc`; the texts (by vector key) its passages and spans need."""
        record, chunks, texts = index_document(doc, settings)
        self.records.append(record)
        self.chunks.extend(chunks)
        self.passage_keys.update(texts)
        if settings.answers:
            spans = answer_span_texts(chunks, settings.model)
            self.span_keys.update(spans)
            texts = {**texts, **spans}
        return texts


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
    with build_lock(index_dir), ExitStack() as on_exit:
        for staging in remove_abandoned_exports(index_dir):
            LOG.warning("removed %s, left by an interrupted model export", staging.name)
        if rebuild:
            VectorCache(index_dir).clear()
        suffixes = settings.extension_list
        stamps = list_document_files(
            settings.corpus_dir, suffixes, report.unsupported, report.skipped_reasons
        )
        stamp_of = {s.doc_id: s for s in stamps}
        previous = None if rebuild else previous_build(index_dir)
        old_manifest = previous.manifest if previous else None
        old = {d.doc_id: d for d in old_manifest.documents} if old_manifest else {}
        if old_manifest is not None:
            report.settings_changed = differences(old_manifest, settings, set(BUILD_FIELDS))
        found = VectorSources()
        if previous is not None:
            if previous.vectors.shape[0] == len(previous.chunks):
                found.add((c.vector_key for c in previous.chunks), previous.vectors)
            found.add((k.decode() for k in previous.span_keys.tolist()), previous.span_vectors)
        cache = VectorCache(index_dir)
        on_exit.callback(cache.close)  # on every way out, errors too
        vectors_of = VectorSupply(found, cache, settings, embedder, progress)

        # Documents stream in from the reader processes; each is cut and its new texts
        # queued for the model as it comes, so the model embeds while the workers read on.
        # Until something is known to change, documents wait unchunked: an index that is
        # up to date costs only the reading (and what was extracted is cached).
        documents: list[Document] = []
        waiting: list[Document] = []
        parts = _Parts()
        skipped: dict[str, list[int]] = {}
        skip_reasons: dict[str, str] = {}
        unreadable: set[tuple[str, str]] = set()  # (reader, sha256) of unreadable files
        changing = (
            old_manifest is None
            or bool(report.settings_changed)
            or not settings_match(old_manifest, settings)
        )
        for doc in read_documents(stamps, settings.corpus_dir, index_dir, settings.read_workers):
            if isinstance(doc, Skipped):
                stamp = stamp_of[doc.doc_id]
                skipped[doc.doc_id] = [stamp.size, stamp.mtime_ns]
                skip_reasons[doc.doc_id] = doc.why
                unreadable.add((READERS.get(stamp.path.suffix.lower(), ""), doc.sha256))
                report.skipped_reasons[doc.reason] = report.skipped_reasons.get(doc.reason, 0) + 1
                continue
            documents.append(doc)
            report.formats[doc.format] = report.formats.get(doc.format, 0) + 1
            if doc.doc_id not in old:
                report.added.append(doc.doc_id)
            elif old[doc.doc_id].sha256 != doc.sha256:
                report.changed.append(doc.doc_id)
            else:
                report.unchanged.append(doc.doc_id)
            changing = changing or doc.doc_id not in old or old[doc.doc_id].sha256 != doc.sha256
            waiting.append(doc)
            if changing:
                for ready in waiting:
                    vectors_of.want(parts.add(ready, settings))
                waiting.clear()
        report.skipped = sorted(skipped)
        if not documents:
            raise CorpusNotFound(
                f"no readable document ({', '.join(suffixes)}) in {settings.corpus_dir}: add "
                "documents or point RAG_CORPUS_DIR / --corpus at the right folder"
            )
        current_ids = {d.doc_id for d in documents}
        report.removed = sorted(set(old) - current_ids)
        read = {(d.format, d.sha256) for d in documents if d.extracted}
        ExtractionCache(index_dir).keep_only(read | unreadable)

        if (
            old_manifest is not None
            and previous is not None
            and previous.live  # a damaged pointer is repaired by publishing again
            and not (report.added or report.changed or report.removed)
            and settings_match(old_manifest, settings)
            and not report.settings_changed  # e.g. the same files in another folder
            and old_manifest.skipped == skipped
            and old_manifest.skip_reasons == skip_reasons
            and all(old[d.doc_id].mtime_ns == d.mtime_ns for d in documents)
            and previous.intact()  # else a damaged file is repaired by publishing again
        ):
            report.up_to_date = True
            report.chunks = old_manifest.chunk_count
            if settings.fast_queries and isinstance(embedder, SentenceTransformerEmbedder):
                export_fast_encoder(settings, embedder)  # an index built before exports
            report.seconds = time.perf_counter() - started
            return report

        for ready in waiting:
            vectors_of.want(parts.add(ready, settings))
        chunks = parts.chunks
        if not chunks:
            raise CorpusNotFound(
                f"the documents in {settings.corpus_dir} hold no passage of text (only "
                "headings or page furniture): add documents with prose"
            )
        vectors_of.finish()
        embedder, fresh = vectors_of.embedder, vectors_of.fresh
        report.embedded = sum(1 for k in parts.passage_keys if k in fresh)
        report.spans_embedded = sum(
            k in fresh and k not in parts.passage_keys for k in parts.span_keys
        )
        report.cached = vectors_of.cached
        report.reused = sum(1 for c in chunks if c.vector_key not in fresh)
        found = vectors_of.found
        dimension = vectors_of.dimension()
        span_keys = sorted(parts.span_keys)
        vectors = found.assemble([c.vector_key for c in chunks], dimension)
        span_vectors = found.assemble(span_keys, dimension)

        index_type = choose_type(settings.index_type, len(chunks))
        faiss_index, index_params = build_vector_index(vectors, index_type, settings.hnsw_m)
        lexical = LexicalIndex.build(
            [c.embed_text for c in chunks],
            settings.bm25_stem,
            settings.bm25_stopwords,
        )
        manifest = Manifest(
            model=settings.model,
            dimension=dimension,
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
            chunker_version=CHUNKER_VERSION,
            keyword_version=KEYWORD_VERSION,
            reader_version=READER_VERSION,
            embed_version=EMBED_TEXT_VERSION,
            bm25_stem=settings.bm25_stem,
            bm25_stopwords=settings.bm25_stopwords,
            index_type=index_type,
            index_params=index_params,
            answer_spans=settings.answers,
            build_settings=build_settings_of(settings),
            documents=parts.records,
            skipped=skipped,
            skip_reasons=skip_reasons,
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
        if settings.fast_queries and isinstance(embedder, SentenceTransformerEmbedder):
            export_fast_encoder(settings, embedder)
        report.chunks = len(chunks)
        report.seconds = time.perf_counter() - started
        return report
