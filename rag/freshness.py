"""Whether an index is current: built with these settings from the corpus as it is now."""

from __future__ import annotations

from rag.chunking import CHUNKER_VERSION
from rag.corpus import list_document_files, open_inside
from rag.errors import RagError
from rag.file_text import current_digest
from rag.lexical import KEYWORD_VERSION
from rag.manifest import Manifest
from rag.model_text import EMBED_TEXT_VERSION
from rag.readers import READER_VERSION
from rag.settings import Settings
from rag.vector_index import choose_type


def settings_match(manifest: Manifest, settings: Settings) -> bool:
    return (
        manifest.model == settings.model
        and manifest.chunk_size == settings.chunk_size
        and manifest.chunk_overlap == settings.chunk_overlap
        and manifest.chunker_version == CHUNKER_VERSION
        and manifest.keyword_version == KEYWORD_VERSION
        and manifest.reader_version == READER_VERSION
        and manifest.embed_version == EMBED_TEXT_VERSION
        and manifest.bm25_stem == settings.bm25_stem
        and manifest.bm25_stopwords == settings.bm25_stopwords
        and manifest.index_type == choose_type(settings.index_type, manifest.chunk_count)
        and manifest.index_params.get("M", settings.hnsw_m) == settings.hnsw_m
        and (manifest.answer_spans or not settings.answers)
    )


def index_is_current(settings: Settings, manifest: Manifest) -> bool:
    """Whether the corpus and settings are what `manifest` was built from (a file has
    changed when `rag.corpus.current_digest` says so, as for a cited span)."""
    if not settings_match(manifest, settings):
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
