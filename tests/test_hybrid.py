"""BM25, fusion, explanations, per-document caps, and the BM25 files of the index."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.build import build_index
from rag.errors import IndexCorrupt
from rag.manifest import FORMAT_VERSION, MANIFEST
from rag.pipeline import Pipeline
from rag.search import RRF_K, SCORE_FUSION_ALPHA, rank_passages
from rag.settings import Settings
from rag.store import current_build, load_index

from .conftest import FakeEmbedder


@pytest.fixture
def fake_pipeline(fake_settings: Settings) -> Pipeline:
    embedder = FakeEmbedder()
    build_index(fake_settings, embedder=embedder)
    return Pipeline(fake_settings, load_index(fake_settings.index_dir), embedder)


def test_rrf_fuses_reciprocal_ranks(fake_pipeline: Pipeline):
    index = fake_pipeline.index
    question = "Amnesty report death commission"
    xq = fake_pipeline.embedder.embed_batch([question], "query")[0]
    ranking = rank_passages(index, xq, question, "hybrid", pool=50, fusion="rrf")
    assert ranking
    for c in ranking:
        expected = sum(1.0 / (RRF_K + r) for r in (c.dense_rank, c.bm25_rank) if r is not None)
        assert c.score == pytest.approx(expected)
    assert [c.score for c in ranking] == sorted((c.score for c in ranking), reverse=True)


def test_score_fusion_is_normalized(fake_pipeline: Pipeline):
    index = fake_pipeline.index
    question = "Amnesty report death commission"
    xq = fake_pipeline.embedder.embed_batch([question], "query")[0]
    ranking = rank_passages(index, xq, question, "hybrid", pool=50, fusion="score")
    assert all(0.0 <= c.score <= 1.0 for c in ranking)
    # Each ranking's first passage gets its full normalized share, its last none.
    dense_first = next(c for c in ranking if c.dense_rank == 1)
    bm25_first = next(c for c in ranking if c.bm25_rank == 1)
    assert dense_first.score >= SCORE_FUSION_ALPHA - 1e-9
    assert bm25_first.score >= 1 - SCORE_FUSION_ALPHA - 1e-9
    assert min(c.score for c in ranking) == pytest.approx(0.0, abs=1e-9) or len(ranking) < 2


def test_bm25_finds_no_passage_for_unknown_words(fake_pipeline: Pipeline):
    response = fake_pipeline.ask("zzzqqq xxyyzz", mode="bm25")
    assert response.hits == []


def test_max_per_doc_and_filter_hold_in_every_mode(fake_pipeline: Pipeline):
    for mode in ("dense", "bm25", "hybrid"):
        hits = fake_pipeline.ask("massacre 1988 Amnesty", k=5, mode=mode, max_per_doc=1).hits
        assert len({h.doc_id for h in hits}) == len(hits) > 1
        only = ["002_d2ed503e188a2ca5.txt"]
        hits = fake_pipeline.ask("massacre 1988 Amnesty", k=5, mode=mode, doc_ids=only).hits
        assert hits and {h.doc_id for h in hits} == set(only)


def test_explain_reports_both_rankings(fake_pipeline: Pipeline):
    hits = fake_pipeline.ask("Amnesty report", k=5, mode="hybrid", explain=True).hits
    assert all(h.explain is not None for h in hits)
    assert any(h.explain.dense_rank and h.explain.bm25_rank for h in hits)
    assert fake_pipeline.ask("Amnesty report", k=1).hits[0].explain is None


@pytest.mark.parametrize("victim", ["bm25/params.index.json", "bm25/vocab.index.json"])
def test_damaged_bm25_files_are_reported(fake_settings: Settings, victim: str):
    build_index(fake_settings, embedder=FakeEmbedder())
    path = current_build(fake_settings.index_dir) / victim
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="rag index"):
        load_index(fake_settings.index_dir)


def test_older_index_format_reuses_its_vectors(fake_settings: Settings):
    build_index(fake_settings, embedder=FakeEmbedder())
    manifest_path = current_build(fake_settings.index_dir) / MANIFEST
    old = json.loads(manifest_path.read_text())
    old["format_version"] = 1
    del old["bm25_stem"], old["bm25_stopwords"]
    manifest_path.write_text(json.dumps(old))
    counting = FakeEmbedder()
    report = build_index(fake_settings, embedder=counting)
    assert report.embedded == 0 and counting.embedded == [] and report.reused == report.chunks
    assert load_index(fake_settings.index_dir).manifest.format_version == FORMAT_VERSION


def test_bm25_settings_change_rebuilds_without_embedding(fake_settings: Settings):
    build_index(fake_settings, embedder=FakeEmbedder())
    plain = fake_settings.model_copy(update={"bm25_stem": False})
    counting = FakeEmbedder()
    report = build_index(plain, embedder=counting)
    assert not report.up_to_date and report.embedded == 0
    assert load_index(plain.index_dir).manifest.bm25_stem is False


def test_bm25_scores_match_rare_words_exactly(seed_pipeline):
    hits = seed_pipeline.ask("Astan Quds Razavi", k=3, mode="bm25", explain=True).hits
    assert "Astan Quds Razavi" in hits[0].text and hits[0].explain.bm25_rank == 1
    assert hits[0].score == pytest.approx(hits[0].explain.bm25_score)


def test_hybrid_keeps_reprints_collapsed(seed_pipeline):
    hits = seed_pipeline.ask(
        "Which officials in a 1988 death commission head the Supreme Court for Judges?",
        k=10,
        mode="hybrid",
    ).hits
    reprinted = [h for h in hits if "Hossein Ali Nayyeri" in h.text]
    assert len(reprinted) == 1
    places = {reprinted[0].doc_id, *(p.doc_id for p in reprinted[0].also_in)}
    assert places == {"003_bddc2f2a3ccead0c.txt", "004_344e65d2d89902b4.txt"}
    assert np.all(np.diff([h.score for h in hits]) <= 1e-9)


def test_ask_many_embeds_questions_in_batches(fake_pipeline: Pipeline, monkeypatch):
    calls: list[int] = []
    original = fake_pipeline.embedder.embed_batch

    def counting(texts, kind):
        if kind == "query":
            calls.append(len(texts))
        return original(texts, kind)

    monkeypatch.setattr(fake_pipeline.embedder, "embed_batch", counting)
    questions = [f"Amnesty report number {i}" for i in range(5)]
    responses = fake_pipeline.ask_many(questions, k=2, batch_size=3, mode="dense")
    assert [r.question for r in responses] == questions
    assert calls[:2] == [3, 2]  # two batches, no question embedded alone
    single = fake_pipeline.ask(questions[0], k=2, mode="dense")
    assert [h.chunk_id for h in responses[0].hits] == [h.chunk_id for h in single.hits]
