"""BM25, fusion, explanations, per-document caps, and the BM25 files of the index."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.build import build_index
from rag.errors import IndexCorrupt
from rag.manifest import FORMAT_VERSION, MANIFEST
from rag.pipeline import Pipeline
from rag.search import DENSE_WEIGHT, FUSION_DEPTH, RRF_K, rank_passages
from rag.settings import Settings
from rag.store import current_build, load_index

from .conftest import SEEDS, FakeEmbedder


@pytest.fixture
def fake_pipeline(fake_settings: Settings) -> Pipeline:
    embedder = FakeEmbedder()
    build_index(fake_settings, embedder=embedder)
    return Pipeline(fake_settings, load_index(fake_settings.index_dir), embedder)


def test_rrf_fuses_reciprocal_ranks(fake_pipeline: Pipeline):
    index = fake_pipeline.index
    question = "Amnesty report death commission"
    xq = fake_pipeline.embedder.embed_batch([question], "query")[0]
    ranking = rank_passages(index, xq, question, "hybrid", depth=50, fusion="rrf")
    assert ranking
    for c in ranking:
        expected = sum(1.0 / (RRF_K + r) for r in (c.dense_rank, c.bm25_rank) if r is not None)
        assert c.score == pytest.approx(expected)
    assert [c.score for c in ranking] == sorted((c.score for c in ranking), reverse=True)


def test_minmax_fusion_puts_each_ranking_on_its_own_scale(fake_pipeline: Pipeline):
    """score = alpha * dense + (1 - alpha) * bm25, each min-max scaled over its fixed pool
    (the first 100 dense proposals; the 100 best BM25 scores, zeros included)."""
    index = fake_pipeline.index
    question = "Amnesty report death commission"
    xq = fake_pipeline.embedder.embed_batch([question], "query")[0]
    ranking = rank_passages(index, xq, question, "hybrid", fusion="minmax")
    dense = [c.dense_score for c in ranking if c.dense_rank is not None]
    bm25 = np.sort(index.lexical.scores(question))[::-1][:FUSION_DEPTH]  # zeros included
    both = [c for c in ranking if c.dense_rank is not None and c.bm25_rank is not None]
    assert both
    for c in both:
        d = (c.dense_score - min(dense)) / (max(dense) - min(dense))
        b = (c.bm25_score - bm25.min()) / (bm25.max() - bm25.min())
        assert c.score == pytest.approx(DENSE_WEIGHT * d + (1 - DENSE_WEIGHT) * b, abs=1e-5)


QUESTIONS = [
    "How far is Camp Ashraf from Baghdad?",
    "Who wrote the graphic novel?",
    "Amnesty International report 1988 massacre",
    "What did the former political prisoners ask the United Nations to do?",
    "When was the MEK founded?",
]


@pytest.mark.parametrize("fusion", ["zscore", "minmax", "rrf"])
def test_fewer_results_are_the_first_of_more(seed_pipeline, fusion):
    """A passage's score does not depend on k: k=5 is the head of k=10 (and k=3 of k=5),
    in every mode, with and without a document filter."""
    pipeline = Pipeline(
        seed_pipeline.settings.model_copy(update={"fusion": fusion, "answers": False}),
        seed_pipeline.index,
        seed_pipeline.embedder,
    )
    docs = sorted(pipeline.index.documents)
    for question in QUESTIONS:
        for mode in ("dense", "bm25", "hybrid"):
            for doc_ids in (None, docs[2:]):
                for cap in (None, 1):  # a cap makes the search go deeper than 100
                    runs = {
                        k: [
                            (h.chunk_id, h.score)
                            for h in pipeline.ask(
                                question, k=k, mode=mode, doc_ids=doc_ids, max_per_doc=cap
                            ).hits
                        ]
                        for k in (3, 5, 10)
                    }
                    assert runs[5][:3] == runs[3], (question, mode, doc_ids, cap)
                    assert runs[10][:5] == runs[5], (question, mode, doc_ids, cap)


def test_deeper_results_come_after_the_first_hundred(seed_pipeline):
    """k beyond FUSION_DEPTH widens the search; the first results stay those of k=100."""
    first = [h.chunk_id for h in seed_pipeline.ask("Camp Ashraf", k=100, mode="hybrid").hits]
    more = [h.chunk_id for h in seed_pipeline.ask("Camp Ashraf", k=200, mode="hybrid").hits]
    assert len(more) > len(first) and more[: len(first)] == first
    assert len(more) == len(set(more))


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


def test_tokens_are_those_of_bm25s():
    """rag.lexical.tokenize does bm25s.tokenize's steps without its per-call overhead: the
    index and the questions must keep getting the same tokens."""
    import bm25s
    import Stemmer

    from rag.lexical import _TOKEN_PATTERN, tokenize

    texts = [p.read_text(encoding="utf-8") for p in sorted(SEEDS.iterdir())]
    texts += ["Who's the U.N.'s rapporteur? 1988, 30,000 — Été naïve", "", "the of and"]
    texts += ["Python 3.7 was dropped in 0.104.0 (2.5 GB/s, 335,000 articles, v1.2.)"]
    for stem in (True, False):
        for stopwords in (True, False):
            expected = bm25s.tokenize(
                texts,
                token_pattern=_TOKEN_PATTERN,
                stopwords="en" if stopwords else None,
                stemmer=Stemmer.Stemmer("english") if stem else None,
                return_ids=False,
                show_progress=False,
            )
            assert tokenize(texts, stem, stopwords) == expected


def test_zscore_fusion_by_hand(seed_pipeline):
    """score = alpha z(dense) + (1 - alpha) z(bm25), each z over its fixed pool: the dense
    evidence of the first 100 dense proposals, the 100 best BM25 scores (zeros included)."""
    index = seed_pipeline.index
    question = "Dezful"  # a word few passages hold: the BM25 pool is mostly zeros
    xq = seed_pipeline.embedder.embed_batch([question], "query")[0]
    ranking = rank_passages(index, xq, question, "hybrid", fusion="zscore")
    bm25 = index.lexical.scores(question)
    b_pool = np.sort(bm25)[::-1][:FUSION_DEPTH]
    d_pool = np.array([c.dense_score for c in ranking if c.dense_rank is not None])
    assert len(d_pool) == min(FUSION_DEPTH, len(index.chunks))
    for c in ranking[:20]:
        if c.dense_rank is None:
            continue
        z_d = (c.dense_score - d_pool.mean()) / d_pool.std()
        z_b = (bm25[c.row] - b_pool.mean()) / b_pool.std()
        assert c.score == pytest.approx(DENSE_WEIGHT * z_d + (1 - DENSE_WEIGHT) * z_b, abs=1e-4)
    assert max(abs(c.score) for c in ranking) < 20  # few matches do not blow the scale up


def test_dense_evidence_mixes_the_passage_and_its_best_sentence(seed_pipeline):
    from rag.search import SENTENCE_WEIGHT

    index = seed_pipeline.index
    assert all(len(index.spans_of(row)) for row in range(len(index.chunks)))
    question = "How far is Camp Ashraf from Baghdad?"
    xq = seed_pipeline.embedder.embed_batch([question], "query")[0]
    for c in rank_passages(index, xq, question, "dense")[:10]:
        passage = float(np.asarray(index.vectors[c.row]) @ xq)
        sentences = np.asarray(index.span_vectors[index.spans_of(c.row)], dtype=np.float32) @ xq
        expected = (1 - SENTENCE_WEIGHT) * passage + SENTENCE_WEIGHT * float(sentences.max())
        assert c.dense_score == pytest.approx(expected, abs=1e-5)


def test_a_window_mostly_inside_a_better_one_is_left_out(seed_pipeline):
    from rag import search

    question = "Camp Ashraf Baghdad Diyala residents"
    folded = seed_pipeline.ask(question, k=10).hits
    by_doc: dict[str, list[tuple[int, int]]] = {}
    for hit in folded:
        for start, end in by_doc.get(hit.doc_id, []):
            overlap = min(end, hit.end_char) - max(start, hit.start_char)
            assert overlap <= (hit.end_char - hit.start_char) / 2
        by_doc.setdefault(hit.doc_id, []).append((hit.start_char, hit.end_char))
    try:
        search.FOLD_OVERLAPS = False
        unfolded = seed_pipeline.ask(question, k=10).hits
    finally:
        search.FOLD_OVERLAPS = True
    assert [h.chunk_id for h in unfolded] != [h.chunk_id for h in folded]  # it did fold
