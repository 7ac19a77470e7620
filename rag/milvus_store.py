"""The index in Milvus (RAG_BACKEND=milvus): the same passages, vectors and answer spans as
the local build, in five collections that any process or machine with the URI can serve.

    <prefix>_passages   one passage a row: citation fields, text, the float32 vector, and a
                        sparse BM25 field that Milvus's own BM25 function fills from
                        `bm25_text` (the passage under its heading, tokenized as the local
                        BM25 tokenizes it: stemmed, no stopwords, words joined by spaces)
    <prefix>_spans      answer-span vectors keyed by vector key (a second collection: one
                        span is shared by every passage that holds it, as in span_vectors.npy)
    <prefix>_terms      document frequency of every BM25 term, for exact BM25 scores and the
                        answer's term weights (Milvus does not expose its own statistics)
    <prefix>_copies     the passages whose text occurs in several places, by rag.duplicates'
                        key: a question looks up a candidate's copies by primary key (a
                        filter on a scalar field is a scan of every row on Milvus Lite)
    <prefix>_meta       the manifest (build parameters, model, BM25 statistics) and one row
                        per document (its record: sha256, title, pages...)

A build is the local build (rag.build, which reads, chunks and embeds, reusing vectors by
content hash) followed by rag.milvus_sync.sync_index: documents whose sha256 changed are
deleted and inserted again, removed ones deleted, unchanged ones left alone; the manifest
row is written last. Milvus has no transaction across collections: a server answering
during a sync sees each document either before or after.

Milvus Lite (a folder path as URI) is one process's store: a second process opening the same
folder fails at once, so `rag index` and `rag serve` cannot share one Lite folder at the same
time (stop the server, index, start it again; or use a Milvus server).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.chunking import Chunk
from rag.errors import BackendUnavailable, ConfigError, IndexMismatch, IndexNotFound
from rag.lexical import tokenize
from rag.manifest import DocumentRecord, Manifest
from rag.settings import Settings

LOG = logging.getLogger(__name__)

PASSAGES, SPANS, TERMS, COPIES, META = "passages", "spans", "terms", "copies", "meta"
MAX_COPIES = 1_000  # chunk ids kept per group of exact copies (a JSON value is at most 64 KB)
# The collections' layout, stored with the manifest: another layout is rebuilt, not read.
# 1: passages, spans, terms, copies, meta
SCHEMA_VERSION = 1
MAX_VARCHAR = 65_535  # bytes: Milvus's longest VARCHAR
MAX_ID = 4_096  # bytes of a doc_id (a relative path) or chunk id
DUMMY_DIM = 2  # Milvus needs a vector field in every collection; terms and meta hold none
INSERT_ROWS = 512  # rows per insert call: well under gRPC's 64 MB message limit
# bm25s's defaults (k1, b), which the local backend uses; a Milvus server's default is k1 1.2
BM25_K1, BM25_B = 1.5, 0.75
# Build parameters whose change makes every stored passage or vector wrong: start afresh.
SAME_INDEX = (
    "model",
    "dimension",
    "chunk_size",
    "chunk_overlap",
    "chunker_version",
    "bm25_stem",
    "bm25_stopwords",
    "keyword_version",  # read with getattr: manifests of some versions lack these
    "reader_version",
    "embed_version",
)


def milvus_uri(settings: Settings) -> str:
    """RAG_MILVUS_URI, or a Milvus Lite folder inside the index folder."""
    return settings.milvus_uri or str(Path(settings.index_dir) / "milvus.db")


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://"))


class _LiteStartFailure(logging.Filter):
    """Milvus Lite logs a traceback when it cannot open its folder (another process holds
    it) and pymilvus then raises a bare "Open local milvus failed": keep the reason for
    one line, drop the traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            self.reason = str(record.exc_info[1])
        return False


# Clients by (URI, token), made on first use: `rag ask` checks the index and then serves
# from it through one connection (a Milvus Lite start is ~0.4 s).
_CLIENTS: dict[tuple[str, str], Any] = {}


def connect(settings: Settings, fresh: bool = False) -> Any:
    """A pymilvus client for the settings' URI (the process's, unless `fresh`);
    BackendUnavailable (one line, naming the URI) when it cannot be reached."""
    uri = milvus_uri(settings)
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    key = (uri if is_server(uri) else str(Path(uri).expanduser().resolve()), token)
    if not fresh and key in _CLIENTS:
        return _CLIENTS[key]
    client = _open(uri, token)
    _CLIENTS[key] = client
    return client


def _open(uri: str, token: str) -> Any:
    from pymilvus import MilvusClient

    if not is_server(uri):
        if not uri.endswith(".db"):
            raise ConfigError(
                f"RAG_MILVUS_URI {uri!r} is neither a server URI (http://host:19530) nor a "
                "Milvus Lite path, which must end in .db (e.g. ./milvus.db)"
            )
        Path(uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    quiet = _LiteStartFailure()
    lite_log = logging.getLogger("milvus_lite.server_manager")
    lite_log.addFilter(quiet)
    try:
        client = MilvusClient(uri=uri, token=token, timeout=10)
    except Exception as exc:  # noqa: BLE001 - pymilvus raises several kinds for one problem
        reason = quiet.reason or getattr(exc, "message", None) or str(exc) or type(exc).__name__
        hint = (
            "start the server or fix RAG_MILVUS_URI"
            if is_server(uri)
            else "a Milvus Lite folder serves one process at a time: stop the other one "
            "(rag serve, rag index), or use a Milvus server"
        )
        raise BackendUnavailable(f"cannot open Milvus at {uri} ({reason}); {hint}") from None
    finally:
        lite_log.removeFilter(quiet)
    client._rag_server = is_server(uri)  # how to read all rows (`all_rows`)
    return client


def unavailable(settings: Settings, exc: Exception) -> BackendUnavailable:
    """A Milvus call that failed while serving, as one line for a 503 or the CLI."""
    reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return BackendUnavailable(
        f"Milvus at {milvus_uri(settings)} failed ({reason}); retry when it is back"
    )


@dataclass(frozen=True)
class Collections:
    """The names of one index's collections."""

    prefix: str

    @property
    def passages(self) -> str:
        return f"{self.prefix}_{PASSAGES}"

    @property
    def spans(self) -> str:
        return f"{self.prefix}_{SPANS}"

    @property
    def terms(self) -> str:
        return f"{self.prefix}_{TERMS}"

    @property
    def copies(self) -> str:
        return f"{self.prefix}_{COPIES}"

    @property
    def meta(self) -> str:
        return f"{self.prefix}_{META}"

    def all(self) -> tuple[str, ...]:
        return (self.passages, self.spans, self.terms, self.copies, self.meta)


def term_key(term: str) -> str:
    """A term as the terms collection keys it (a very long one by its hash)."""
    return term if len(term.encode()) <= 512 else "#" + hashlib.sha1(term.encode()).hexdigest()


def bm25_tokens(chunk: Chunk, stem: bool, stopwords: bool) -> list[str]:
    """What the local BM25 indexes of a passage: what retrieval sees of it (`embed_text`,
    as rag.build gives LexicalIndex.build), tokenized by rag.lexical."""
    return tokenize([chunk.embed_text], stem, stopwords)[0]


def create_collections(client: Any, names: Collections, dimension: int) -> None:
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False)
    schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID + 32)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=MAX_ID)
    for name in ("ordinal", "start", "end", "line_start", "line_end", "page"):
        schema.add_field(name, DataType.INT64)
    schema.add_field("section", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("vector_key", DataType.VARCHAR, max_length=64)
    schema.add_field("copy_key", DataType.VARCHAR, max_length=64)  # rag.duplicates' key
    schema.add_field("doc_sha256", DataType.VARCHAR, max_length=64)
    # Already tokenized (stemmed, no stopwords): the `standard` analyzer only splits the
    # words again, so Milvus's BM25 sees the local BM25's terms.
    schema.add_field(
        "bm25_text",
        DataType.VARCHAR,
        max_length=MAX_VARCHAR,
        enable_analyzer=True,
        analyzer_params={"type": "standard"},
    )
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name="bm25",
            function_type=FunctionType.BM25,
            input_field_names=["bm25_text"],
            output_field_names=["sparse"],
        )
    )
    index = client.prepare_index_params()
    # Exact search, as the local flat index; a server at scale would take HNSW here (the
    # scores of what it proposes are recomputed exactly from the vectors, rag.milvus_search).
    index.add_index("vector", index_type="FLAT", metric_type="IP")
    index.add_index(
        "sparse",
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"bm25_k1": BM25_K1, "bm25_b": BM25_B},
    )
    _create_collection(client, names.passages, schema, index)

    for name, key, vector_dim, value in (
        (names.spans, "key", dimension, None),
        (names.terms, "term", DUMMY_DIM, ("df", DataType.INT64)),
        (names.copies, "key", DUMMY_DIM, ("chunk_ids", DataType.JSON)),
        (names.meta, "key", DUMMY_DIM, ("value", DataType.JSON)),
    ):
        schema = client.create_schema(auto_id=False)
        schema.add_field(key, DataType.VARCHAR, is_primary=True, max_length=MAX_ID + 32)
        if name == names.meta:
            schema.add_field("kind", DataType.VARCHAR, max_length=16)
        if value is not None:
            schema.add_field(value[0], value[1])
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=vector_dim)
        index = client.prepare_index_params()
        index.add_index("vector", index_type="FLAT", metric_type="IP")
        _create_collection(client, name, schema, index)


def _create_collection(client: Any, name: str, schema: Any, index: Any) -> None:
    """Create a collection and its indexes without waiting on them: the wait asks the
    server for a timestamp, which Milvus Lite does not implement (a logged traceback per
    index); loading the collection waits for its indexes anyway."""
    client.create_collection(name, schema=schema)
    client.create_index(name, index, sync=False)


def all_rows(client: Any, collection: str, fields: list[str], filter: str = "") -> Iterator[dict]:
    """Every row matching `filter`. A server returns at most 16,384 rows a query, so it is
    read with query_iterator; Milvus Lite returns all rows at once and does not implement
    what the iterator asks first (it logs a traceback per call)."""
    if not getattr(client, "_rag_server", True):
        yield from client.query(collection, filter=filter, output_fields=fields)
        return
    it = client.query_iterator(collection, batch_size=4096, filter=filter, output_fields=fields)
    try:
        while batch := it.next():
            yield from batch
    finally:
        it.close()


def insert_rows(client: Any, collection: str, rows: list[dict]) -> None:
    for start in range(0, len(rows), INSERT_ROWS):
        client.insert(collection, rows[start : start + INSERT_ROWS])


def quoted(values: list[str]) -> str:
    return json.dumps(values, ensure_ascii=False)


@dataclass
class StoredIndex:
    """What the meta collection says: the manifest and the BM25 statistics."""

    manifest: Manifest
    bm25_n: int
    bm25_avgdl: float
    schema: int = SCHEMA_VERSION


def read_stored(client: Any, names: Collections) -> StoredIndex | None:
    """The index's manifest (with its documents) and BM25 statistics; None when none."""
    if not client.has_collection(names.meta):
        return None
    client.load_collection(names.meta)  # Lite, once reopened, searches only loaded ones
    rows = client.query(names.meta, filter='key == "manifest"', output_fields=["value"])
    if not rows:
        return None
    value = dict(rows[0]["value"])
    stats = value.pop("bm25_stats", {})
    schema = int(value.pop("milvus_schema", 0))
    records = [
        DocumentRecord.model_validate(row["value"])
        for row in all_rows(client, names.meta, ["value"], 'kind == "doc"')
    ]
    order = {doc_id: i for i, doc_id in enumerate(value.pop("document_order", []))}
    records.sort(key=lambda r: order.get(r.doc_id, len(order)))
    manifest = Manifest.from_json({**value, "documents": [r.model_dump() for r in records]})
    n, avgdl = int(stats.get("n", 0)), float(stats.get("avgdl", 0.0))
    return StoredIndex(manifest, n, avgdl, schema)


def require_stored(client: Any, settings: Settings) -> StoredIndex:
    """The stored index, or IndexNotFound / IndexMismatch saying how to build it."""
    stored = read_stored(client, Collections(settings.milvus_collection))
    where = f"{settings.milvus_collection!r} in Milvus at {milvus_uri(settings)}"
    if stored is None:
        raise IndexNotFound(f"no index {where}; run `RAG_BACKEND=milvus rag index` to build it")
    if stored.schema != SCHEMA_VERSION:
        raise IndexMismatch(
            f"the index {where} has layout {stored.schema}, this version reads "
            f"{SCHEMA_VERSION}; run `RAG_BACKEND=milvus rag index` to rebuild it"
        )
    return stored
