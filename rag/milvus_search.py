"""Search over the Milvus collections with the local backend's ranking, unchanged.

Milvus proposes: its dense search and its BM25 full-text search each return their best
`depth` passages, as the local FAISS and bm25s rankings do. Those passages (and their exact
copies elsewhere) are fetched with their vectors, tokens and answer-span vectors into a small
`IndexData` (a "view") in which every score is computed as the local backend computes it:
cosines from the float32 vectors, BM25 with bm25s's formula over the whole index's
statistics (the terms collection). rag.search's own `rank_passages`, `collapse` and `hit_of`
then run on the view, so fusion, folding of copies and overlaps, and citations are the local
backend's code, not a copy of it.

Why rescore rather than take Milvus's scores: Milvus Lite computes BM25 statistics per
segment and, under a filter, over the filtered rows only (measured: the same passage scored
1.67 unfiltered, 1.39 under `chunk_id in [...]`), and Milvus's BM25 has a (k1 + 1) factor
bm25s has not. Only which passages are proposed comes from Milvus; a passage scored on the
edge of a pool may be proposed by one and not the other (bench/MILVUS.md measures it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunking import Chunk, passage_spans
from rag.embedding import vector_key
from rag.lexical import tokenize
from rag.manifest import DocumentRecord, Manifest
from rag.milvus_store import BM25_B, BM25_K1, Collections, StoredIndex, quoted, term_key
from rag.options import Fusion, Mode
from rag.search import FUSION_DEPTH, Candidate, collapse, rank_passages
from rag.store import IndexData

# Milvus's BM25 proposes this many times the pool, rescored exactly (`bm25_pool`): at 100k
# synthetic passages the top 10 of 16% of hybrid questions differed with 1 time
# (bench/MILVUS.md).
BM25_WIDER = 4
# Milvus returns at most this many rows a call (its `limit`, and `query` without iterator).
MILVUS_LIMIT = 16_384
_ROW_FIELDS = [
    "chunk_id", "doc_id", "ordinal", "start", "end", "line_start", "line_end", "section",
    "text", "vector_key", "copy_key", "bm25_text", "vector", "doc_sha256",
]  # fmt: skip


class ViewLexical:
    """BM25 scores of a view's passages, computed before the view is searched."""

    def __init__(self, scores: np.ndarray) -> None:
        self._scores = scores

    def scores(self, question: str) -> np.ndarray:
        return self._scores


class MilvusLexical:
    """What the answer needs of BM25 (term weights, unseen words), from the terms
    collection: the same figures as rag.lexical.LexicalIndex over the same passages."""

    def __init__(self, client: Any, names: Collections, n: int, stem: bool, stopwords: bool):
        self.client, self.names, self.n = client, names, n
        self.stem, self.stopwords = stem, stopwords

    def document_frequencies(self, terms: list[str]) -> dict[str, int]:
        """df of each term (0 for a term no passage holds), looked up by primary key."""
        keys = sorted({term_key(t) for t in terms})
        found: dict[str, int] = {}
        for start in range(0, len(keys), 1024):
            part = keys[start : start + 1024]
            rows = self.client.get(self.names.terms, ids=part, output_fields=["df"])
            found.update({row["term"]: int(row["df"]) for row in rows})
        return {t: found.get(term_key(t), 0) for t in terms}

    def term_weights(self, text: str) -> dict[str, float]:
        terms = sorted(set(tokenize([text], self.stem, self.stopwords)[0]))
        df = self.document_frequencies(terms)
        return {t: float(np.log(1 + (self.n - df[t] + 0.5) / (df[t] + 0.5))) for t in terms}

    def unseen_share(self, question: str) -> float:
        tokens = tokenize([question], self.stem, self.stopwords)[0]
        if not tokens:
            return 0.0
        df = self.document_frequencies(tokens)
        return sum(df[t] == 0 for t in tokens) / len(tokens)


def bm25_scores(
    docs: list[list[str]], query: list[str], df: dict[str, int], n: int, avgdl: float
) -> np.ndarray:
    """bm25s's Lucene BM25 of each tokenized passage: per term idf * tf / (tf + k1 (1 - b +
    b dl / avgdl)), each term's score rounded to float32 as bm25s stores it, summed in
    float32 in the query's order (a repeated query word counts twice, as in bm25s)."""
    scores = np.zeros(len(docs), dtype=np.float32)
    known = [t for t in query if df.get(t, 0) > 0]
    if not known or not avgdl:
        return scores
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in set(known)}
    for i, tokens in enumerate(docs):
        counts: dict[str, int] = {}
        for t in tokens:
            counts[t] = counts.get(t, 0) + 1
        norm = BM25_K1 * ((1 - BM25_B) + BM25_B * len(tokens) / avgdl)
        total = np.float32(0.0)
        for t in known:
            tf = counts.get(t, 0)
            if tf:
                total = np.float32(total + np.float32(idf[t] * tf / (norm + tf)))
        scores[i] = total
    return scores


@dataclass
class MilvusIndex:
    """An index served from Milvus: its manifest and documents (read once), and the client
    through which every question reaches the collections."""

    client: Any
    names: Collections
    stored: StoredIndex
    path: Path  # a label for logs and messages: the URI and collection prefix

    def __post_init__(self) -> None:
        self.manifest: Manifest = self.stored.manifest
        self.documents: dict[str, DocumentRecord] = {d.doc_id: d for d in self.manifest.documents}
        self._doc_order = {d.doc_id: i for i, d in enumerate(self.manifest.documents)}
        # The view's manifest: no documents (the view looks them up in `documents`), flat.
        self._view_manifest = self.manifest.model_copy(
            update={"index_type": "flat", "documents": []}
        )
        self.lexical = MilvusLexical(
            self.client, self.names, self.stored.bm25_n, self.manifest.bm25_stem,
            self.manifest.bm25_stopwords,
        )  # fmt: skip

    @property
    def passage_count(self) -> int:
        return self.manifest.chunk_count

    def count_in(self, doc_ids: list[str]) -> int:
        return sum(self.documents[d].chunks for d in doc_ids)

    # -- what Milvus proposes ------------------------------------------------------------
    def _filter(self, doc_ids: list[str] | None) -> str:
        return "" if doc_ids is None else f"doc_id in {quoted(doc_ids)}"

    def propose_dense(self, xq: np.ndarray, depth: int, doc_ids: list[str] | None) -> list[str]:
        found = self.client.search(
            self.names.passages, data=[np.asarray(xq, dtype=np.float32).tolist()],
            anns_field="vector", limit=depth, filter=self._filter(doc_ids),
            search_params={"metric_type": "IP"}, output_fields=["chunk_id"],
        )  # fmt: skip
        return [hit["chunk_id"] for hit in found[0]]

    def propose_bm25(self, tokens: list[str], depth: int, doc_ids: list[str] | None) -> list[str]:
        if not tokens:
            return []
        found = self.client.search(
            self.names.passages, data=[" ".join(tokens)], anns_field="sparse", limit=depth,
            filter=self._filter(doc_ids), search_params={"metric_type": "BM25"},
            output_fields=["chunk_id"],
        )  # fmt: skip
        return [hit["chunk_id"] for hit in found[0]]

    def span_vectors_of(self, keys: list[str]) -> dict[str, np.ndarray]:
        """Stored answer-span vectors by key (those stored; float16 values, as the local
        span_vectors.npy holds them). Looked up by primary key: `get` is faster than an
        `in` filter on Milvus Lite."""
        found: dict[str, np.ndarray] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), 1024):
            part = unique[start : start + 1024]
            for row in self.client.get(self.names.spans, ids=part, output_fields=["vector"]):
                found[row["key"]] = np.asarray(row["vector"], dtype=np.float16)
        return found

    def passages_before(self, doc_id: str, ordinal: int, count: int) -> list[Chunk]:
        """Up to `count` passages of `doc_id` before passage `ordinal`, nearest first (their
        ids are `doc_id#ordinal`: looked up by primary key)."""
        ids = [f"{doc_id}#{i}" for i in range(ordinal - 1, max(-1, ordinal - 1 - count), -1)]
        rows = (
            self.client.get(self.names.passages, ids=ids, output_fields=_ROW_FIELDS) if ids else []
        )
        chunks = [_chunk(r) for r in rows if self._current(r)]
        return sorted(chunks, key=lambda c: -c.ordinal)

    # -- the view ------------------------------------------------------------------------
    def _current(self, row: dict) -> bool:
        record = self.documents.get(row["doc_id"])
        return record is not None and record.sha256 == row["doc_sha256"]

    def row_key(self, row: dict) -> tuple[int, int]:
        """Where a passage sits in the local backend's row order (documents in manifest
        order, passages by ordinal): ties break alike."""
        return self._doc_order.get(row["doc_id"], 1 << 40), int(row["ordinal"])

    def bm25_pool(
        self, tokens: list[str], depth: int, doc_ids: list[str] | None, df: dict[str, int]
    ) -> list[str]:
        """The `depth` best passages by exact BM25, as the local backend's pool: Milvus
        proposes BM25_WIDER times as many (its own scores use per-segment statistics on
        Milvus Lite, and break ties its own way), which are rescored from their tokens."""
        ids = self.propose_bm25(tokens, min(depth * BM25_WIDER, MILVUS_LIMIT), doc_ids)
        if not ids:
            return []
        fields = ["doc_id", "ordinal", "bm25_text"]
        rows = list(self.client.get(self.names.passages, ids=ids, output_fields=fields))
        n, avgdl = self.stored.bm25_n, self.stored.bm25_avgdl
        scores = bm25_scores([r["bm25_text"].split() for r in rows], tokens, df, n, avgdl)
        order = sorted(
            (i for i in range(len(rows)) if scores[i] > 0),
            key=lambda i: (-float(scores[i]), self.row_key(rows[i])),
        )
        return [rows[i]["chunk_id"] for i in order[:depth]]

    def view(self, ids: list[str], question_tokens: list[str], df: dict[str, int]) -> IndexData:
        """The passages `ids` and every exact copy of them, in the local backend's row
        order (`row_key`), with everything rag.search reads of an index; `df`: document
        frequencies of the question's words."""
        rows = (
            list(self.client.get(self.names.passages, ids=ids, output_fields=_ROW_FIELDS))
            if ids
            else []
        )
        keys = sorted({r["copy_key"] for r in rows})
        groups = (
            self.client.get(self.names.copies, ids=keys, output_fields=["chunk_ids"])
            if keys
            else []
        )
        have = set(ids)
        copies = sorted({i for g in groups for i in g["chunk_ids"] if i not in have})
        if copies:
            rows += self.client.get(self.names.passages, ids=copies, output_fields=_ROW_FIELDS)
        # Passages written by a sync after this process read the manifest (a document added
        # or changed since) wait for it to be read again (POST /admin/reload): their
        # citations would name a record this process does not hold.
        rows = [r for r in rows if self._current(r)]
        rows.sort(key=self.row_key)
        chunks = [_chunk(r) for r in rows]
        dimension = self.manifest.dimension
        vectors = np.array([r["vector"] for r in rows], dtype=np.float32).reshape(-1, dimension)
        tokens = [r["bm25_text"].split() for r in rows]
        scores = bm25_scores(
            tokens, question_tokens, df, self.stored.bm25_n, self.stored.bm25_avgdl
        )
        model = self.manifest.model
        span_keys = [
            vector_key(model, c.text[start:end])
            for c in chunks
            for start, end, _ in passage_spans(c.text, c.section)
        ]
        spans = self.span_vectors_of(span_keys)
        ordered = sorted(spans)
        span_vectors = (
            np.array([spans[k] for k in ordered], dtype=np.float16).reshape(-1, dimension)
            if ordered
            else np.zeros((0, 0), dtype=np.float16)
        )
        import faiss

        flat = faiss.IndexFlatIP(dimension)
        if len(vectors):
            flat.add(vectors)
        index = IndexData(
            self.path, self._view_manifest, chunks, flat, vectors,
            np.array(ordered, dtype="S64"), span_vectors, ViewLexical(scores),
        )  # fmt: skip
        index.documents = self.documents  # the whole index's records: citations need them
        return index


def _chunk(row: dict) -> Chunk:
    """A passage as the local backend holds it, from its row in the passages collection."""
    return Chunk(
        chunk_id=row["chunk_id"], doc_id=row["doc_id"], ordinal=int(row["ordinal"]),
        start=int(row["start"]), end=int(row["end"]), line_start=int(row["line_start"]),
        line_end=int(row["line_end"]), section=row["section"], text=row["text"],
        vector_key=row["vector_key"],
    )  # fmt: skip


def search_milvus(
    index: MilvusIndex,
    xq: np.ndarray | None,
    question: str,
    k: int,
    mode: Mode = "dense",
    doc_ids: list[str] | None = None,
    fusion: Fusion = "zscore",
    max_per_doc: int | None = None,
) -> tuple[IndexData, list[Candidate]]:
    """rag.search.search over Milvus: the k best distinct passages, and the view their rows
    refer to (for rag.search.hit_of)."""
    total = index.passage_count if doc_ids is None else index.count_in(doc_ids)
    tokens = tokenize([question], index.manifest.bm25_stem, index.manifest.bm25_stopwords)[0]
    if total == 0 or k <= 0:
        return index.view([], tokens, {}), []
    depth = min(total, FUSION_DEPTH)
    view, ranking = _rank(index, xq, question, tokens, mode, depth, doc_ids, fusion)
    found = collapse(view, ranking, k, _rows_in(view, doc_ids), max_per_doc)
    # Deeper only as rag.search.search goes deeper: earlier candidates keep their places.
    while len(found) < k and depth < total:
        depth = min(total, depth * 2, MILVUS_LIMIT)
        deeper_view, deeper = _rank(index, xq, question, tokens, mode, depth, doc_ids, fusion)
        row_of = {c.chunk_id: i for i, c in enumerate(deeper_view.chunks)}
        kept = [
            replace(c, row=row_of[view.chunks[c.row].chunk_id])
            for c in ranking
            if view.chunks[c.row].chunk_id in row_of
        ]
        seen = {c.row for c in kept}
        view, ranking = deeper_view, kept + [c for c in deeper if c.row not in seen]
        found = collapse(view, ranking, k, _rows_in(view, doc_ids), max_per_doc)
        if depth == MILVUS_LIMIT:
            break
    return view, found


def _rows_in(view: IndexData, doc_ids: list[str] | None) -> np.ndarray | None:
    if doc_ids is None:
        return None
    allowed = set(doc_ids)
    return np.array([i for i, c in enumerate(view.chunks) if c.doc_id in allowed], dtype=np.int64)


def _rank(
    index: MilvusIndex,
    xq: np.ndarray | None,
    question: str,
    tokens: list[str],
    mode: Mode,
    depth: int,
    doc_ids: list[str] | None,
    fusion: Fusion,
) -> tuple[IndexData, list[Candidate]]:
    """One ranking at `depth`, as rag.search.rank_passages ranks, over the view of what
    Milvus's two searches propose."""
    ids: list[str] = []
    df = index.lexical.document_frequencies(tokens) if tokens and mode != "dense" else {}
    if mode != "bm25" and xq is not None:
        ids += index.propose_dense(xq, depth, doc_ids)
    if mode != "dense":
        ids += index.bm25_pool(tokens, depth, doc_ids, df)
    view = index.view(list(dict.fromkeys(ids)), tokens, df)
    ranking = rank_passages(view, xq, question, mode, depth, _rows_in(view, doc_ids), fusion)
    return view, ranking
