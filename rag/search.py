"""Dense retrieval over a loaded index: FAISS inner product on unit vectors (= cosine),
with passages that appear in several documents returned once."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from rag.errors import DocumentNotFound
from rag.models import Hit, Location
from rag.store import ChunkRecord, IndexData

_SHINGLE = 5  # words per shingle when comparing passages for near-duplicates
_NEAR_DUPLICATE = 0.8  # share of the shorter passage's shingles found in the other


def _text_key(text: str) -> str:
    return hashlib.sha1(" ".join(text.lower().split()).encode()).hexdigest()


def duplicate_groups(chunks: list[ChunkRecord]) -> dict[int, list[int]]:
    """For each row whose text (case and spacing aside) occurs elsewhere, the other rows."""
    rows_by_text: dict[str, list[int]] = defaultdict(list)
    for row, chunk in enumerate(chunks):
        rows_by_text[_text_key(chunk.text)].append(row)
    return {
        row: [other for other in rows if other != row]
        for rows in rows_by_text.values()
        if len(rows) > 1
        for row in rows
    }


def shingles(text: str) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i : i + _SHINGLE]) for i in range(max(1, len(words) - _SHINGLE + 1))}


def is_near_duplicate(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> bool:
    """Whether most of the shorter passage is inside the other: the same article reprinted
    on another page, cut into windows at slightly different places."""
    return bool(a) and bool(b) and len(a & b) / min(len(a), len(b)) >= _NEAR_DUPLICATE


@dataclass(frozen=True)
class Candidate:
    row: int
    score: float
    also: tuple[int, ...] = ()  # rows of the same passage elsewhere


def search_by_vector(
    index: IndexData, xq: np.ndarray, k: int, rows: np.ndarray | None = None
) -> list[Candidate]:
    """The k best passages for query vector `xq`, each passage once: exact copies and
    near-duplicates collapse into the best-scoring one, the others listed in `also`.
    With `rows`, only those rows are searched (a filter applied inside FAISS)."""
    ntotal = index.faiss_index.ntotal if rows is None else len(rows)
    if ntotal == 0 or k <= 0:
        return []
    xq = np.ascontiguousarray(xq, dtype=np.float32).reshape(1, -1)
    params = None
    if rows is not None:
        import faiss

        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(rows.astype(np.int64)))
    duplicates = index.duplicates
    allowed = set(rows.tolist()) if rows is not None else set()
    fetch = min(ntotal, 2 * k + min(len(duplicates), 4 * k))
    while True:
        D, I = index.faiss_index.search(xq, fetch, params=params)
        kept: list[tuple[int, float, list[int]]] = []
        sizes: list[int] = []  # shingle count of each kept passage
        owners: dict[tuple[str, ...], list[int]] = defaultdict(list)  # shingle -> kept
        seen: set[int] = set()
        for row, score in zip(I[0].tolist(), D[0].tolist(), strict=True):
            if row < 0 or row in seen:
                continue
            copies = duplicates.get(row, [])
            if rows is not None:
                copies = [c for c in copies if c in allowed]
            seen.add(row)
            seen.update(copies)
            words = shingles(index.chunks[row].text)
            twin = _near_twin(words, owners, sizes)
            if twin is not None:
                kept[twin][2].extend([row, *copies])
                continue
            for shingle in words:
                owners[shingle].append(len(kept))
            sizes.append(len(words))
            kept.append((row, float(score), list(copies)))
        if len(kept) >= k or fetch >= ntotal:
            return [Candidate(row, score, tuple(also)) for row, score, also in kept[:k]]
        fetch = min(ntotal, fetch * 2)


def _near_twin(
    words: set[tuple[str, ...]], owners: dict[tuple[str, ...], list[int]], sizes: list[int]
) -> int | None:
    """The kept passage that `words` nearly duplicates, found through shared shingles
    (linear in the passage's length, not in the number of passages kept)."""
    shared: Counter[int] = Counter()
    for shingle in words:
        shared.update(owners.get(shingle, ()))
    for kept, count in shared.most_common():
        if count / min(len(words), sizes[kept]) >= _NEAR_DUPLICATE:
            return kept
    return None


def rows_of_documents(index: IndexData, doc_ids: list[str]) -> np.ndarray:
    """Rows of the passages of `doc_ids`; an id that is not indexed is an error."""
    unknown = [d for d in doc_ids if d not in index.documents]
    if unknown:
        raise DocumentNotFound(
            f"no document {unknown[0]!r} in the index (GET /documents or `rag docs` lists them)"
        )
    wanted = set(doc_ids)
    return np.array([r for r, c in enumerate(index.chunks) if c.doc_id in wanted], dtype=np.int64)


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


def hit_of(index: IndexData, found: Candidate, rank: int) -> Hit:
    chunk = index.chunks[found.row]
    return Hit(
        rank=rank,
        score=round(found.score, 6),
        title=index.documents[chunk.doc_id].title,
        section=chunk.section,
        text=chunk.text,
        also_in=[location_of(index, other) for other in found.also],
        **location_of(index, found.row).model_dump(),
    )
