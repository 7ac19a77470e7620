"""Retrieval over a loaded index in three modes: dense (FAISS inner product on unit
vectors, i.e. cosine), bm25 (keywords), and hybrid (the two rankings fused). Passages that
appear in several documents come back once; a per-document cap keeps results diverse."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rag.duplicates import NearDuplicateFinder, shingles
from rag.errors import DocumentNotFound
from rag.models import Explanation, Hit, Location
from rag.options import Fusion, Mode
from rag.store import IndexData
from rag.vector_index import search_parameters

# Fusion constants, each chosen by 5-fold cross-validation (repeated 4 times) on the dev
# questions, eval/questions.jsonl (eval/retrieval.md; the held-out test set chose nothing).
FUSION_DEPTH = 100  # each ranking proposes this many passages, whatever k is asked for
DENSE_WEIGHT = 0.65  # alpha: the dense share of a z-score fusion
SENTENCE_WEIGHT = 0.5  # lambda: dense evidence = (1 - lambda) passage + lambda best sentence
FOLD_OVERLAPS = True  # a window mostly inside a better one of its document is left out
RRF_K = 10  # reciprocal rank fusion's constant, when RAG_FUSION=rrf
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
    dense_score: float | None = None  # the dense evidence: passage and best sentence
    bm25_rank: int | None = None
    bm25_score: float | None = None
    also: tuple[int, ...] = ()  # rows of the same passage elsewhere


def _top(rows: np.ndarray, scores: np.ndarray, pool: int) -> list[tuple[int, float]]:
    """The `pool` best (row, score) pairs, best first (ties by row, at the pool's edge too:
    argpartition alone keeps an arbitrary few of the passages tied there, and another
    backend proposing the same passages would then keep others)."""
    if pool < len(scores):
        edge = np.partition(-scores, pool - 1)[pool - 1]
        keep = np.flatnonzero(-scores <= edge)  # the pool and every passage tied at its edge
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))[:pool]
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


def _bm25_scores(index: IndexData, question: str, rows: np.ndarray | None) -> np.ndarray | None:
    """BM25 score of every passage (outside `rows`, when given: -inf); None without BM25."""
    if index.lexical is None:
        return None
    scores = index.lexical.scores(question)
    if rows is not None:
        masked = np.full_like(scores, -np.inf)
        masked[rows] = scores[rows]
        scores = masked
    return scores


def _bm25_top(scores: np.ndarray, depth: int) -> list[tuple[int, float]]:
    """The best `depth` passages by BM25 that match at least one word, best first."""
    matched = np.flatnonzero(scores > 0)
    return _top(matched, scores[matched], min(depth, len(matched))) if len(matched) else []


def _dense_evidence(index: IndexData, rows: np.ndarray, xq: np.ndarray) -> np.ndarray:
    """Cosine of each passage with the question, mixed with its best sentence's: a short
    question matches one sentence better than a 600-character window (eval/retrieval.md:
    test MRR@10 of dense mode 0.692 by passage, 0.796 mixed with its best sentence's). A
    passage whose sentences are not stored (an index built without answers) keeps its own
    cosine."""
    passage = np.asarray(index.vectors[rows] @ xq, dtype=np.float32)
    if not len(index.span_vectors) or not len(rows):
        return passage
    spans = [index.spans_of(int(r)) for r in rows]
    sizes = np.fromiter((len(own) for own in spans), dtype=np.int64, count=len(spans))
    if not sizes.sum():
        return passage
    flat = np.concatenate(spans)
    order = np.argsort(flat, kind="stable")  # a memory map reads best in row order
    cosines = np.empty(len(flat), dtype=np.float32)
    cosines[order] = np.asarray(index.span_vectors[flat[order]], dtype=np.float32) @ xq
    best = np.full(len(rows), -np.inf, dtype=np.float32)
    np.maximum.at(best, np.repeat(np.arange(len(rows)), sizes), cosines)
    best = np.where(sizes > 0, best, passage)  # no stored sentence: the passage's own
    return (1 - SENTENCE_WEIGHT) * passage + SENTENCE_WEIGHT * best


def _zscores(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """`values` on the scale of `pool` (one ranking's own top FUSION_DEPTH): the same
    passage gets the same number whatever k and whatever the other ranking proposed."""
    if not len(pool):
        return np.zeros_like(values)
    spread = float(pool.std())
    return (values - float(pool.mean())) / (spread if spread > 0 else 1.0)


def _minmax(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """`values` scaled to the pool's range (the pool's best is 1, its worst 0)."""
    if not len(pool):
        return np.zeros_like(values)
    lo, hi = float(pool.min()), float(pool.max())
    return (values - lo) / (hi - lo) if hi > lo else values - lo


def _top_scores(scores: np.ndarray, n: int) -> np.ndarray:
    """The `n` highest finite scores (outside a document filter they are -inf)."""
    finite = scores[np.isfinite(scores)]
    if len(finite) > n:
        finite = np.partition(finite, len(finite) - n)[len(finite) - n :]
    return finite.astype(np.float32)


def _ordered(rows: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
    """(row, score) pairs, best score first, ties by row."""
    order = np.lexsort((rows, -scores))
    return [(int(rows[i]), float(scores[i])) for i in order]


def rank_passages(
    index: IndexData,
    xq: np.ndarray | None,
    question: str,
    mode: Mode,
    depth: int = FUSION_DEPTH,
    rows: np.ndarray | None = None,
    fusion: Fusion = "zscore",
    effort: Effort = Effort(),
) -> list[Candidate]:
    """Passages of one mode, best first, each with its dense and BM25 ranks and scores.

    Each ranking proposes its best `depth` passages; the dense ones are rescored with
    their sentences (`_dense_evidence`). Hybrid scores every proposed passage by both
    rankings exactly (a passage one ranking did not propose still has its real score
    there) and puts each ranking's scores on the scale of its own proposals, so a
    passage's fused score does not depend on k: the first 5 of k=10 are k=5's answer."""
    bm25_all = _bm25_scores(index, question, rows) if mode != "dense" else None
    lexical = _bm25_top(bm25_all, depth) if bm25_all is not None else []
    dense: list[tuple[int, float]] = []
    proposed: list[tuple[int, float]] = []
    evidence: dict[int, float] = {}  # dense evidence of every proposed passage, found once
    if mode != "bm25" and xq is not None:
        kind, structure = index.manifest.index_type, index.faiss_index
        proposed = dense_ranking(kind, structure, index.vectors, xq, depth, rows, effort)
        found = np.array([r for r, _ in proposed], dtype=np.int64)
        also = np.array([r for r, _ in lexical], dtype=np.int64)
        wanted = found if mode == "dense" else np.union1d(found, also)
        if len(wanted):
            scores = _dense_evidence(index, wanted, xq).tolist()
            evidence = dict(zip(wanted.tolist(), scores, strict=True))
        dense = _ordered(found, np.array([evidence[r] for r in found.tolist()]))
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
        order = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
    else:
        both = np.array(sorted(dense_at.keys() | bm25_at.keys()), dtype=np.int64)
        if not len(both):
            return []
        scale = _zscores if fusion == "zscore" else _minmax  # "minmax", or its old name
        d = np.array([evidence.get(r, 0.0) for r in both.tolist()], dtype=np.float32)
        # Each scale from a fixed pool, whatever `depth`: the dense evidence of the first
        # FUSION_DEPTH proposals, and the FUSION_DEPTH best BM25 scores, zeros included (a
        # question only a few passages match must not stretch their small differences).
        d_pool = np.array([evidence[r] for r, _ in proposed[:FUSION_DEPTH]], dtype=np.float32)
        b_pool = _top_scores(bm25_all, FUSION_DEPTH) if bm25_all is not None else d_pool[:0]
        b = bm25_all[both] if bm25_all is not None else np.zeros(len(both))
        b = np.where(np.isfinite(b), b, 0.0)
        scores = DENSE_WEIGHT * scale(d, d_pool) + (1 - DENSE_WEIGHT) * scale(b, b_pool)
        order = _ordered(both, scores)
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
    near-duplicates fold into the best-ranked one (listed in `also`); a window that mostly
    repeats a better-ranked window of its document (chunks overlap) is left out; at most
    `max_per_doc` passages from one document."""
    allowed = set(rows.tolist()) if rows is not None else None
    kept: list[Candidate] = []
    near = NearDuplicateFinder()
    seen: set[int] = set()
    per_doc: dict[str, int] = {}
    taken: dict[str, list[tuple[int, int]]] = {}  # kept windows' offsets by document
    for found in ranking:
        if found.row in seen:
            continue
        chunk = index.chunks[found.row]
        if FOLD_OVERLAPS and _mostly_inside(chunk.start, chunk.end, taken.get(chunk.doc_id, [])):
            seen.add(found.row)
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
        taken.setdefault(doc_id, []).append((chunk.start, chunk.end))
        near.add(words)
        kept.append(_with_also(found, copies))
        if len(kept) == k:
            break
    return kept


def _mostly_inside(start: int, end: int, windows: list[tuple[int, int]]) -> bool:
    """Whether more than half of `start:end` lies in one of `windows`."""
    return any(min(end, e) - max(start, s) > (end - start) / 2 for s, e in windows)


def _with_also(found: Candidate, rows: list[int]) -> Candidate:
    return replace(found, also=(*found.also, *rows))


def search(
    index: IndexData,
    xq: np.ndarray | None,
    question: str,
    k: int,
    mode: Mode = "dense",
    rows: np.ndarray | None = None,
    fusion: Fusion = "zscore",
    max_per_doc: int | None = None,
    effort: Effort = Effort(),
) -> list[Candidate]:
    """The k best distinct passages for a question (its vector `xq` for dense and hybrid)."""
    total = index.faiss_index.ntotal if rows is None else len(rows)
    if total == 0 or k <= 0:
        return []
    depth = min(total, FUSION_DEPTH)
    ranking = rank_passages(index, xq, question, mode, depth, rows, fusion, effort)
    found = collapse(index, ranking, k, rows, max_per_doc)
    # Deeper only when k, copies or a per-document cap need more passages than the first
    # FUSION_DEPTH give: the deeper candidates come after those, never before, so the
    # first results stay those of a smaller k.
    while len(found) < k and depth < total:
        depth = min(total, depth * 2)
        deeper = rank_passages(index, xq, question, mode, depth, rows, fusion, effort)
        seen = {c.row for c in ranking}
        ranking += [c for c in deeper if c.row not in seen]
        found = collapse(index, ranking, k, rows, max_per_doc)
    return found


def require_documents(documents: Container[str], doc_ids: list[str]) -> None:
    """An id in `doc_ids` that is not indexed is an error (on every backend)."""
    unknown = [d for d in doc_ids if d not in documents]
    if unknown:
        raise DocumentNotFound(
            f"no document {unknown[0]!r} in the index (GET /documents or `rag docs` lists them)"
        )


def hits_of(
    index: IndexData, found: list[Candidate], min_score: float | None, explain: bool
) -> list[Hit]:
    """Ranked candidates as hits, those under `min_score` left out."""
    if min_score is not None:
        found = [c for c in found if c.score >= min_score]
    return [hit_of(index, c, rank, explain) for rank, c in enumerate(found, 1)]


def rows_of_documents(index: IndexData, doc_ids: list[str]) -> np.ndarray:
    """Rows of the passages of `doc_ids`; an id that is not indexed is an error."""
    require_documents(index.documents, doc_ids)
    rows = sorted({r for doc_id in doc_ids for r in index.rows_by_doc.get(doc_id, [])})
    return np.array(rows, dtype=np.int64)


def location_of(index: IndexData, row: int) -> Location:
    chunk = index.chunks[row]
    record = index.documents[chunk.doc_id]
    return Location(
        doc_id=chunk.doc_id,
        chunk_id=chunk.chunk_id,
        start_char=chunk.start,
        end_char=chunk.end,
        line_start=chunk.line_start,
        line_end=chunk.line_end,
        doc_sha256=record.sha256,
        **record.pages(chunk.start, chunk.end),
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
