"""Dense search structures: chosen by size or by setting, rebuilt from stored vectors when
the choice changes, and giving the same passages and scores as exact search on the seeds."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.build import build_index
from rag.pipeline import Pipeline
from rag.search import dense_ranking
from rag.settings import Settings
from rag.store import load_index
from rag.vector_index import (
    FLAT_UP_TO,
    build_vector_index,
    choose_type,
    ivf_lists,
    pq_bytes,
    read_vector_index,
    search_parameters,
    write_vector_index,
)

QUESTIONS = [
    "Who leaked the Montazeri audio tape?",
    "How far is Camp Ashraf from Baghdad?",
    "What did Amnesty International call its report?",
    "Which UN experts wrote to the Iranian regime?",
]


def test_choose_type_by_size_unless_set():
    assert choose_type("auto", 242) == "flat"
    assert choose_type("auto", FLAT_UP_TO) == "flat"
    assert choose_type("auto", FLAT_UP_TO + 1) == "ivfpq"
    assert choose_type("hnsw", 10) == "hnsw"
    assert ivf_lists(1_000_000) == 4096 and ivf_lists(1) == 4
    assert pq_bytes(384) == 48 and 100 % pq_bytes(100) == 0


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_structures_round_trip_through_disk(tmp_path: Path, kind: str):
    rng = np.random.default_rng(1)
    centers = rng.standard_normal((20, 32))
    x = centers[rng.integers(0, 20, 3000)] + 0.3 * rng.standard_normal((3000, 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    index, params = build_vector_index(x, kind)
    write_vector_index(index, tmp_path / "f.index")
    loaded = read_vector_index(tmp_path / "f.index")
    assert loaded.ntotal == 3000 and loaded.d == 32
    assert (kind == "ivfpq") == ("nlist" in params)
    params = search_parameters(kind, 64, 16)
    _, got = loaded.search(x[:20], 10, params=params)
    np.testing.assert_array_equal(got, index.search(x[:20], 10, params=params)[1])
    if kind != "ivfpq":  # exact or near-exact: every vector finds itself first
        assert (got[:, 0] == np.arange(20)).all()


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_approximate_search_finds_the_exact_neighbours_at_scale(kind: str):
    """At 20k clustered vectors (where structures stop being exact), the candidates of
    HNSW and IVF-PQ, rescored exactly as rag.search does, hold the exact top 10."""
    import faiss

    from rag.search import ANN_REFINE

    rng = np.random.default_rng(3)
    n, d, k = 20_000, 64, 10
    centers = rng.standard_normal((200, d))
    xb = centers[rng.integers(0, 200, n)] + 0.5 * rng.standard_normal((n, d))
    xb = (xb / np.linalg.norm(xb, axis=1, keepdims=True)).astype(np.float32)
    xq = xb[rng.choice(n, 100, replace=False)] + 0.1 * rng.standard_normal((100, d))
    xq = (xq / np.linalg.norm(xq, axis=1, keepdims=True)).astype(np.float32)
    exact = faiss.IndexFlatIP(d)
    exact.add(xb)
    _, I_exact = exact.search(xq, k)
    index, _ = build_vector_index(xb, kind)
    wide = k * (ANN_REFINE if kind == "ivfpq" else 1)
    _, I = index.search(xq, wide, params=search_parameters(kind, 256, 32))
    found = []
    for row, candidates in enumerate(I):
        candidates = candidates[candidates >= 0]
        rescored = candidates[np.argsort(-(xb[candidates] @ xq[row]))][:k]
        found.append(len(set(rescored.tolist()) & set(I_exact[row].tolist())) / k)
    assert np.mean(found) >= 0.95, np.mean(found)


@pytest.fixture(scope="module")
def indexes(seed_index: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Settings]:
    """The seed index rebuilt as each structure, from its stored vectors (no embedding)."""
    out = {}
    for kind in ("flat", "hnsw", "ivfpq"):
        folder = tmp_path_factory.mktemp(kind)
        shutil.copytree(seed_index.index_dir, folder, dirs_exist_ok=True)
        settings = seed_index.model_copy(update={"index_dir": folder, "index_type": kind})
        report = build_index(settings)  # no embedder given: one would load if it were needed
        assert report.embedded == 0 and report.up_to_date == (kind == "flat")
        assert load_index(folder).manifest.index_type == kind
        out[kind] = settings
    return out


def test_every_structure_gives_the_exact_passages_and_scores(indexes, real_embedder):
    answers = {}
    for kind, settings in indexes.items():
        pipeline = Pipeline.open(settings, embedder=real_embedder)
        answers[kind] = [pipeline.ask(q, k=5, mode="dense").hits for q in QUESTIONS]
    for kind in ("hnsw", "ivfpq"):  # IVF-PQ: its candidates rescored from the stored vectors
        for got, exact in zip(answers[kind], answers["flat"], strict=True):
            assert [h.chunk_id for h in got] == [h.chunk_id for h in exact]
            assert [h.score for h in got] == pytest.approx([h.score for h in exact], abs=1e-5)


def test_document_filter_is_exact_under_approximate_structures(indexes, real_embedder):
    pipeline = Pipeline.open(indexes["ivfpq"], embedder=real_embedder)
    doc = "001_ef5df5d5046c4c46.txt"
    xq = real_embedder.embed_batch([QUESTIONS[2]], "query")[0]
    rows = np.array(pipeline.index.rows_by_doc[doc])
    index = pipeline.index
    ranking = dense_ranking(
        index.manifest.index_type, index.faiss_index, index.vectors, xq, 3, rows
    )
    exact = sorted(((float(pipeline.index.vectors[r] @ xq), r) for r in rows), reverse=True)[:3]
    assert [r for r, _ in ranking] == [r for _, r in exact]
    hits = pipeline.ask(QUESTIONS[2], k=3, doc_ids=[doc], mode="dense").hits
    assert {h.doc_id for h in hits} == {doc}


def test_changing_the_structure_is_noticed_and_rebuilds_without_embedding(indexes):
    settings = indexes["hnsw"].model_copy(update={"index_type": "auto"})
    report = build_index(settings)
    assert report.embedded == 0 and load_index(settings.index_dir).manifest.index_type == "flat"
    assert build_index(settings).up_to_date
