"""rag: local question answering over a document corpus, with exact citations.

    from rag import load_settings, Pipeline, ensure_index
    settings = load_settings(corpus_dir="seeds")
    ensure_index(settings)
    response = Pipeline.open(settings).ask("How far is Camp Ashraf from Baghdad?")
    for hit in response.hits:
        print(hit.doc_id, hit.start_char, hit.end_char, hit.text)

Importing this package is light: the embedding model loads on first use.
"""

from rag.build import BuildReport, build_index
from rag.chunking import Chunk, chunk_document
from rag.corpus import Document, load_corpus
from rag.errors import (
    ConfigError,
    CorpusNotFound,
    DocumentNotFound,
    EmptyQuestion,
    IndexCorrupt,
    IndexMismatch,
    IndexNotFound,
    InvalidQuery,
    InvalidSpan,
    RagError,
)
from rag.models import Answer, DocumentInfo, Explanation, Hit, Location, QueryResponse
from rag.pipeline import Pipeline, ensure_index
from rag.settings import Settings, load_settings
from rag.store import IndexData, load_index

__all__ = [
    "Answer",
    "BuildReport",
    "Chunk",
    "ConfigError",
    "CorpusNotFound",
    "Document",
    "DocumentInfo",
    "DocumentNotFound",
    "EmptyQuestion",
    "Explanation",
    "Hit",
    "IndexCorrupt",
    "IndexData",
    "IndexMismatch",
    "IndexNotFound",
    "InvalidQuery",
    "InvalidSpan",
    "Location",
    "Pipeline",
    "QueryResponse",
    "RagError",
    "Settings",
    "build_index",
    "chunk_document",
    "ensure_index",
    "load_corpus",
    "load_index",
    "load_settings",
]
