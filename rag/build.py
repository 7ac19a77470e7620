"""Building the index from the corpus, incrementally: only passages whose text (under the
same model) has no stored vector are embedded."""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from filelock import FileLock

from rag.answer import passage_spans
from rag.chunking import CHUNKER_VERSION, chunk_layout, with_heading
from rag.corpus import (
    Document,
    current_digest,
    list_document_files,
    open_inside,
    read_document,
)
from rag.embedding import Embedder, SentenceTransformerEmbedder, embed_documents, vector_key
from rag.errors import CorpusNotFound, IndexCorrupt, IndexMismatch, RagError
from rag.lexical import LexicalIndex
from rag.onnx_encoder import remove_abandoned_exports
from rag.params import build_settings_of, differences
from rag.settings import BUILD_FIELDS, Settings
from rag.store import (
    CHUNKS,
    SPAN_KEYS,
    SPAN_VECTORS,
    VECTORS,
    ChunkRecord,
    DocumentRecord,
    Manifest,
    current_build,
    newest_complete_build,
    read_chunks,
    read_manifest,
    read_spans,
    read_vectors,
    save_index,
    verify_files,
)
from rag.structure import analyze_layout
from rag.vector_cache import VectorCache
from rag.vector_index import build_vector_index, choose_type

LOG = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total) passages embedded


@dataclass
class BuildReport:
    """What a build did, for the CLI to print and tests to check."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    spans_embedded: int = 0  # answer spans embedded (the others were reused)
    cached: int = 0  # vectors found in the vector cache (an interrupted or earlier build)
    settings_changed: dict[str, tuple] = field(default_factory=dict)  # name -> (old, new)
    seconds: float = 0.0
    build: Path | None = None
    up_to_date: bool = False


@dataclass
class _Previous:
    manifest: Manifest | None  # None when unreadable (an older format): vectors still serve
    chunks: list[ChunkRecord]
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


class _Vectors:
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


def answer_span_texts(chunks: list[ChunkRecord], model: str) -> dict[str, str]:
    """The candidate answer spans of every passage (see rag.answer), by vector key."""
    out = {}
    for chunk in chunks:
        for start, end, _ in passage_spans(chunk.text, chunk.section):
            text = chunk.text[start:end]
            out[vector_key(model, text)] = text
    return out


def line_of(newlines: list[int], offset: int) -> int:
    """1-based line number of character `offset`, given the offsets of every newline."""
    return bisect.bisect_left(newlines, offset) + 1


def index_document(
    doc: Document, settings: Settings
) -> tuple[DocumentRecord, list[ChunkRecord], dict[str, str]]:
    """A document's record, its passages, and the text to embed for each vector key."""
    layout = analyze_layout(doc.text, fallback_title=Path(doc.doc_id).stem)
    chunks = chunk_layout(doc.doc_id, doc.text, layout, settings.chunk_size, settings.chunk_overlap)
    newlines = [i for i, ch in enumerate(doc.text) if ch == "\n"]
    records: list[ChunkRecord] = []
    to_embed: dict[str, str] = {}
    for c in chunks:
        key = vector_key(settings.model, c.embed_text)
        to_embed[key] = c.embed_text
        records.append(
            ChunkRecord(
                chunk_id=c.chunk_id,
                doc_id=c.doc_id,
                ordinal=c.ordinal,
                start=c.start,
                end=c.end,
                line_start=line_of(newlines, c.start),
                line_end=line_of(newlines, c.end - 1),
                section=c.section,
                text=c.text,
                vector_key=key,
            )
        )
    record = DocumentRecord(
        doc.doc_id,
        layout.title,
        doc.sha256,
        doc.size,
        doc.mtime_ns,
        len(records),
        chars=len(doc.text),
        checkpoints=doc.checkpoints,
    )
    return record, records, to_embed


def build_lock(index_dir: Path) -> FileLock:
    """One build at a time per index folder (a second `rag index` waits)."""
    return FileLock(index_dir / ".lock")


def _reusable(build: Path) -> _Previous:
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
    return _Previous(manifest, chunks, vectors, span_keys, span_vectors, build)


def _read_previous(index_dir: Path) -> _Previous | None:
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
            return _reusable(build)
        except RagError as exc:
            LOG.warning("previous index not reusable: %s", exc)
    fallback = newest_complete_build(index_dir)
    if fallback is None or fallback == build:
        LOG.warning("no intact build to reuse: embedding everything again")
        return None
    LOG.warning("reusing the vectors of %s", fallback.name)
    return replace(_reusable(fallback), live=False)


def _settings_match(manifest: Manifest, settings: Settings) -> bool:
    return (
        manifest.model == settings.model
        and manifest.chunk_size == settings.chunk_size
        and manifest.chunk_overlap == settings.chunk_overlap
        and manifest.chunker_version == CHUNKER_VERSION
        and manifest.bm25_stem == settings.bm25_stem
        and manifest.bm25_stopwords == settings.bm25_stopwords
        and manifest.index_type == choose_type(settings.index_type, manifest.chunk_count)
        and manifest.index_params.get("M", settings.hnsw_m) == settings.hnsw_m
        and (manifest.answer_spans or not settings.answers)
    )


def index_is_current(settings: Settings, manifest: Manifest) -> bool:
    """Whether the corpus and settings are what `manifest` was built from (a file has
    changed when `rag.corpus.current_digest` says so, as for a cited span)."""
    if not _settings_match(manifest, settings):
        return False
    indexed = {d.doc_id: d for d in manifest.documents}
    stamps = list_document_files(settings.corpus_dir)
    if {s.doc_id for s in stamps} != set(indexed) | set(manifest.skipped):
        return False
    for stamp in stamps:
        record = indexed.get(stamp.doc_id)
        if record is None:
            if manifest.skipped.get(stamp.doc_id) != [stamp.size, stamp.mtime_ns]:
                return False
        else:
            try:
                with open_inside(settings.corpus_dir, stamp.path) as fh:
                    sha256, _ = current_digest(fh, record.size, record.mtime_ns, record.sha256)
            except (OSError, RagError):
                return False
            if sha256 != record.sha256:
                return False
    return True


def export_fast_encoder(settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    """Export the query encoder to ONNX once per model (loading the model if need be)."""
    from rag.onnx_encoder import encoder_dir, export_encoder

    target = encoder_dir(settings.index_dir, settings.model)
    if target.exists():
        return
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return
    try:
        if export_encoder(settings.model, embedder.load(), target):
            LOG.info("exported the query encoder to %s", target)
    except Exception as exc:  # noqa: BLE001 - the slow path still works; say why once
        LOG.warning("ONNX export failed (%s): questions use sentence-transformers", exc)


# Fresh vectors are committed to the vector cache at least this often (texts), so that a
# killed build loses at most a minute or so of embedding on two cores.
COMMIT_TEXTS = 2048


def _embed_and_cache(
    embedder: Embedder,
    missing: dict[str, str],
    cache: VectorCache,
    settings: Settings,
    progress: Progress | None,
) -> np.ndarray:
    """Embed `missing` (key -> text) in order, committing each group of vectors to the
    cache as soon as it is embedded."""
    keys, texts = list(missing), list(missing.values())
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, len(texts))

    parts = []
    for start in range(0, len(texts), COMMIT_TEXTS):
        part = embed_documents(
            embedder, texts[start : start + COMMIT_TEXTS], settings.batch_size, advance
        )
        cache.save(keys[start : start + COMMIT_TEXTS], part)
        parts.append(part)
    return np.vstack(parts)


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
        for stamp in list_document_files(settings.corpus_dir):
            doc = read_document(stamp, settings.corpus_dir)
            if doc is None:
                skipped[stamp.doc_id] = [stamp.size, stamp.mtime_ns]
            else:
                documents.append(doc)
        report.skipped = sorted(skipped)
        if not documents:
            raise CorpusNotFound(
                f"no readable .txt or .md document in {settings.corpus_dir}: add documents "
                "or point RAG_CORPUS_DIR / --corpus at the right folder"
            )

        previous = None if rebuild else _read_previous(index_dir)
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
            and _settings_match(old_manifest, settings)
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
        chunks: list[ChunkRecord] = []
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
        found = _Vectors()
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
            fresh = _embed_and_cache(embedder, missing, cache, settings, progress)
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
        )
        cache.prune(settings.vector_cache_mb * 2**20)
        cache.close()
        if settings.fast_queries and isinstance(embedder, SentenceTransformerEmbedder):
            export_fast_encoder(settings, embedder)
        report.chunks = len(chunks)
        report.seconds = time.perf_counter() - started
        return report
