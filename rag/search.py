"""Retrieval over a loaded index in three modes: dense (FAISS inner product on unit
vectors, i.e. cosine), bm25 (keywords), and hybrid (the two rankings fused). Passages that
appear in several documents come back once; a per-document cap keeps results diverse."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rag.duplicates import NearDuplicateFinder, shingles
from rag.errors import DocumentNotFound
from rag.models import Explanation, Hit, Location
from rag.options import Fusion, Mode
from rag.store import IndexData
from rag.vector_index import search_parameters

RRF_K = 60  # the constant of Cormack et al. (2009): damps the weight of the very top ranks
SCORE_FUSION_ALPHA = 0.5  # weight of the dense score in normalized score fusion
# IVF-PQ's compressed scores are rough: it proposes this many times the candidates wanted,
# which are then scored exactly (bench/SCALE.md: at 1M, recall@10 0.91 with 4 times, 0.995
# with 10 times, at the same latency).
ANN_REFINE = 10
# A passage mirrored in thousands of files would otherwise carry thousands of places.
MAX_ALSO_IN = 10


@dataclass(frozen=True)
class Candidate:
    """A passage in a ranking, with what put it there."""

    row: int
    score: float
    dense_rank: int | None = None
    dense_score: float | None = None
    bm25_rank: int | None = None
    bm25_score: float | None = None
    also: tuple[int, ...] = ()  # rows of the same passage elsewhere


def _top(rows: np.ndarray, scores: np.ndarray, pool: int) -> list[tuple[int, float]]:
    """The `pool` best (row, score) pairs, best first (ties by row)."""
    if pool < len(scores):
        keep = np.argpartition(-scores, pool - 1)[:pool]
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))
    return [(int(r), float(s)) for r, s in zip(rows[order], scores[order], strict=True)]


@dataclass(frozen=True)
class Effort:
    """Query-time search effort of the approximate structures (RAG_HNSW_EF_SEARCH,
    RAG_IVF_NPROBE): a per-call setting, not part of the loaded index."""

    ef_search: int = 256
    nprobe: int = 32


def dense_ranking(
    kind: str,
    faiss_index: Any,
    vectors: np.ndarray,
    xq: np.ndarray,
    pool: int,
    rows: np.ndarray | None = None,
    effort: Effort = Effort(),
) -> list[tuple[int, float]]:
    """Passages by cosine with the question, from a structure of `kind` over `vectors`.
    Within `rows` (a document filter) the scan is exact; an approximate structure (HNSW,
    IVF-PQ) proposes candidates whose scores are then computed exactly from the vectors."""
    xq = np.ascontiguousarray(xq, dtype=np.float32).reshape(1, -1)
    if rows is not None:
        return _top(rows, np.asarray(vectors[rows] @ xq[0], dtype=np.float32), pool)
    if kind == "flat":
        D, I = faiss_index.search(xq, pool)
        return _top(I[0][I[0] >= 0], D[0][I[0] >= 0], pool)  # ties in row order, as below
    wide = min(faiss_index.ntotal, pool * (ANN_REFINE if kind == "ivfpq" else 1))
    params = search_parameters(kind, max(effort.ef_search, wide), effort.nprobe)
    _, I = faiss_index.search(xq, wide, params=params)
    found = np.unique(I[0][I[0] >= 0])
    return _top(found, np.asarray(vectors[found] @ xq[0], dtype=np.float32), pool)


def _bm25_ranking(
    index: IndexData, question: str, pool: int, rows: np.ndarray | None
) -> list[tuple[int, float]]:
    if index.lexical is None:
        return []
    scores = index.lexical.scores(question)
    if rows is not None:
        masked = np.full_like(scores, -np.inf)
        masked[rows] = scores[rows]
        scores = masked
    pool = min(pool, len(scores))
    top = (
        np.argpartition(-scores, pool - 1)[:pool] if pool < len(scores) else np.arange(len(scores))
    )
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(r), float(scores[r])) for r in top if scores[r] > 0]


def _normalized(ranking: list[tuple[int, float]]) -> dict[int, float]:
    if not ranking:
        return {}
    values = [s for _, s in ranking]
    lo, hi = min(values), max(values)
    return {r: (s - lo) / (hi - lo) if hi > lo else 1.0 for r, s in ranking}


def rank_passages(
    index: IndexData,
    xq: np.ndarray | None,
    question: str,
    mode: Mode,
    pool: int,
    rows: np.ndarray | None = None,
    fusion: Fusion = "rrf",
    effort: Effort = Effort(),
) -> list[Candidate]:
    """The best `pool` passages of one mode, best first, each with its dense and BM25
    ranks and scores where that ranking holds it."""
    dense = []
    if mode != "bm25" and xq is not None:
        kind, structure = index.manifest.index_type, index.faiss_index
        dense = dense_ranking(kind, structure, index.vectors, xq, pool, rows, effort)
    lexical = _bm25_ranking(index, question, pool, rows) if mode != "dense" else []
    dense_at = {r: (rank, s) for rank, (r, s) in enumerate(dense, 1)}
    bm25_at = {r: (rank, s) for rank, (r, s) in enumerate(lexical, 1)}
    if mode == "dense":
        order = dense
    elif mode == "bm25":
        order = lexical
    elif fusion == "rrf":
        fused: dict[int, float] = {}
        for ranking in (dense, lexical):
            for rank, (r, _) in enumerate(ranking, 1):
                fused[r] = fused.get(r, 0.0) + 1.0 / (RRF_K + rank)
        order = sorted(fused.items(), key=lambda item: -item[1])
    else:
        d, b = _normalized(dense), _normalized(lexical)
        fused = {
            r: SCORE_FUSION_ALPHA * d.get(r, 0.0) + (1 - SCORE_FUSION_ALPHA) * b.get(r, 0.0)
            for r in d.keys() | b.keys()
        }
        order = sorted(fused.items(), key=lambda item: -item[1])
    return [
        Candidate(
            row=r,
            score=score,
            dense_rank=dense_at.get(r, (None, None))[0],
            dense_score=dense_at.get(r, (None, None))[1],
            bm25_rank=bm25_at.get(r, (None, None))[0],
            bm25_score=bm25_at.get(r, (None, None))[1],
        )
        for r, score in order
    ]


def collapse(
    index: IndexData,
    ranking: list[Candidate],
    k: int,
    rows: np.ndarray | None = None,
    max_per_doc: int | None = None,
) -> list[Candidate]:
    """The first k passages of `ranking`, each passage once: exact copies and
    near-duplicates fold into the best-ranked one (listed in `also`); at most
    `max_per_doc` passages from one document."""
    allowed = set(rows.tolist()) if rows is not None else None
    kept: list[Candidate] = []
    near = NearDuplicateFinder()
    seen: set[int] = set()
    per_doc: dict[str, int] = {}
    for found in ranking:
        if found.row in seen:
            continue
        copies = index.duplicates.copies_of(found.row).tolist()
        if allowed is not None:
            copies = [c for c in copies if c in allowed]
        seen.add(found.row)
        seen.update(copies)
        words = shingles(index.chunks[found.row].text)
        twin = near.twin_of(words)
        if twin is not None:
            first = kept[twin]
            kept[twin] = _with_also(first, [found.row, *copies])
            continue
        doc_id = index.chunks[found.row].doc_id
        if max_per_doc is not None and per_doc.get(doc_id, 0) >= max_per_doc:
            continue
        per_doc[doc_id] = per_doc.get(doc_id, 0) + 1
        near.add(words)
        kept.append(_with_also(found, copies))
        if len(kept) == k:
            break
    return kept


def _with_also(found: Candidate, rows: list[int]) -> Candidate:
    return replace(found, also=(*found.also, *rows))


def search(
    index: IndexData,
    xq: np.ndarray | None,
    question: str,
    k: int,
    mode: Mode = "dense",
    rows: np.ndarray | None = None,
    fusion: Fusion = "rrf",
    max_per_doc: int | None = None,
    effort: Effort = Effort(),
) -> list[Candidate]:
    """The k best distinct passages for a question (its vector `xq` for dense and hybrid)."""
    total = index.faiss_index.ntotal if rows is None else len(rows)
    if total == 0 or k <= 0:
        return []
    pool = min(total, max(50, 4 * k + min(index.duplicates.rows, 4 * k)))
    while True:
        ranking = rank_passages(index, xq, question, mode, pool, rows, fusion, effort)
        found = collapse(index, ranking, k, rows, max_per_doc)
        if len(found) >= k or pool >= total:
            return found
        pool = min(total, pool * 2)


def rows_of_documents(index: IndexData, doc_ids: list[str]) -> np.ndarray:
    """Rows of the passages of `doc_ids`; an id that is not indexed is an error."""
    unknown = [d for d in doc_ids if d not in index.documents]
    if unknown:
        raise DocumentNotFound(
            f"no document {unknown[0]!r} in the index (GET /documents or `rag docs` lists them)"
        )
    rows = sorted({r for doc_id in doc_ids for r in index.rows_by_doc.get(doc_id, [])})
    return np.array(rows, dtype=np.int64)


def location_of(index: IndexData, row: int) -> Location:
    chunk = index.chunks[row]
    return Location(
        doc_id=chunk.doc_id,
        chunk_id=chunk.chunk_id,
        start_char=chunk.start,
        end_char=chunk.end,
        line_start=chunk.line_start,
        line_end=chunk.line_end,
        doc_sha256=index.documents[chunk.doc_id].sha256,
    )


def hit_of(index: IndexData, found: Candidate, rank: int, explain: bool = False) -> Hit:
    chunk = index.chunks[found.row]
    return Hit(
        rank=rank,
        score=round(found.score, 6),
        title=index.documents[chunk.doc_id].title,
        section=chunk.section,
        text=chunk.text,
        also_in=[location_of(index, other) for other in found.also[:MAX_ALSO_IN]],
        also_in_more=max(0, len(found.also) - MAX_ALSO_IN),
        explain=Explanation(
            dense_rank=found.dense_rank,
            dense_score=found.dense_score,
            bm25_rank=found.bm25_rank,
            bm25_score=found.bm25_score,
            fused_score=found.score,
        )
        if explain
        else None,
        **location_of(index, found.row).model_dump(),
    )
