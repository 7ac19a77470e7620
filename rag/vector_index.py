"""The dense search structure, by corpus size: exact flat search for small corpora, IVF-PQ
(clusters of compressed vectors, a few bytes each) for large ones; HNSW (a graph over all
vectors in memory) on request. The choice comes from bench/SCALE.md.

Approximate structures only choose candidates: their scores are recomputed exactly from the
stored vectors (memory-mapped), so a hit's score means the same under every structure.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

IndexType = Literal["auto", "flat", "hnsw", "ivfpq"]  # the setting RAG_INDEX_TYPE
INDEX_TYPES: tuple[str, ...] = get_args(IndexType)
# auto: exact search while it stays fast (bench/SCALE.md: 18 ms a question at 100k, 190 ms
# at 1M); IVF-PQ beyond: at 100k and 1M its recall@10 matched or beat HNSW's (1.000 and
# 0.995 against 1.000 and 0.970) with a 25x smaller file, a faster build and 1-3 ms a question.
FLAT_UP_TO = 100_000
HNSW_EF_CONSTRUCTION = 64
IVF_TRAIN_PER_LIST = 40  # training points per inverted list (FAISS warns below 39)


def choose_type(setting: str, count: int) -> str:
    """The structure for `count` vectors: the setting, or by size when it is `auto`."""
    if setting != "auto":
        return setting
    return "flat" if count <= FLAT_UP_TO else "ivfpq"


def ivf_lists(count: int) -> int:
    """Inverted lists for IVF: about 4 * sqrt(n), a power of two, at least 1."""
    return max(1, 2 ** round(math.log2(max(1.0, 4 * math.sqrt(count)))))


def pq_bytes(dimension: int) -> int:
    """Bytes per compressed vector: one per 8 dimensions (48 for 384-d), a divisor of d."""
    m = max(1, dimension // 8)
    while dimension % m:
        m -= 1
    return m


def build_vector_index(
    vectors: np.ndarray, index_type: str, hnsw_m: int = 32, seed: int = 0
) -> tuple[Any, dict[str, int]]:
    """A FAISS inner-product index over unit `vectors`, with the parameters it was built
    with (stored in the manifest)."""
    import faiss

    count, dimension = vectors.shape
    if index_type == "flat":
        index = faiss.IndexFlatIP(dimension)
        params: dict[str, int] = {}
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        params = {"M": hnsw_m, "ef_construction": HNSW_EF_CONSTRUCTION}
    elif index_type == "ivfpq":
        nlist = min(ivf_lists(count), max(1, count // IVF_TRAIN_PER_LIST))
        m = pq_bytes(dimension)
        # 8 bits (256 codes per sub-vector) once there are enough points to train them
        nbits = max(1, min(8, int(math.log2(max(2, count // IVF_TRAIN_PER_LIST)))))
        quantizer = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFPQ(quantizer, dimension, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(seed).choice(
            count, size=min(count, max(256 * IVF_TRAIN_PER_LIST, nlist * IVF_TRAIN_PER_LIST)),
            replace=False,
        )  # fmt: skip
        index.train(np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32))
        params = {"nlist": nlist, "pq_bytes": m, "pq_bits": nbits}
    else:
        raise ValueError(f"unknown index type {index_type!r}: choose one of {INDEX_TYPES}")
    for start in range(0, count, 65_536):  # in slices: a memory-mapped input is not copied
        index.add(np.ascontiguousarray(vectors[start : start + 65_536], dtype=np.float32))
    return index, params


def write_vector_index(index: Any, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def read_vector_index(path: Path) -> Any:
    """Read an index, memory-mapping flat vector storage (flat and HNSW): loading costs no
    copy, and processes serving the same index share its pages."""
    import faiss

    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)


def search_parameters(index_type: str, ef_search: int, nprobe: int) -> Any:
    """Query-time knobs of the approximate structures (None for flat)."""
    import faiss

    if index_type == "hnsw":
        return faiss.SearchParametersHNSW(efSearch=ef_search)
    if index_type == "ivfpq":
        return faiss.SearchParametersIVF(nprobe=nprobe)
    return None
