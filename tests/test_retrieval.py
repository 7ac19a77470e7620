"""End to end with the real model on the seeds: the right document for questions worded
unlike the text, citations that slice back exactly, reprints returned once."""

from __future__ import annotations

import pytest

from rag.corpus import read_document_text
from rag.duplicates import is_near_duplicate, shingles
from rag.errors import EmptyQuestion, InvalidQuery

QUESTIONS = [
    (
        "What is the distance between Camp Ashraf and the Iraqi capital?",
        "003_bddc2f2a3ccead0c.txt",
        "77 kilometers",
    ),
    (
        "How many truckers were detained in Iran the previous year?",
        "003_bddc2f2a3ccead0c.txt",
        "268",
    ),
    (
        "Which undercover agent went after Amnesty once its findings came out?",
        "000_3adcc106da112fc4.txt",
        "Mesdaghi",
    ),
    (
        "Who at Amnesty called the UN letter a momentous breakthrough?",
        "001_ef5df5d5046c4c46.txt",
        "Eltahawy",
    ),
    (
        "In which Swedish city did supporters demonstrate to remember the victims?",
        "002_d2ed503e188a2ca5.txt",
        "Malmo",
    ),
    (
        "How many inmates did the overcrowded Kahrizak jail hold despite room for fifty?",
        "003_bddc2f2a3ccead0c.txt",
        "Kahrizak",
    ),
]


@pytest.mark.parametrize(("question", "doc_id", "needle"), QUESTIONS)
def test_right_document_for_paraphrased_questions(seed_pipeline, question, doc_id, needle):
    response = seed_pipeline.ask(question, k=5)
    top = [(h.doc_id, h.text) for h in response.hits]
    assert top[0][0] == doc_id, top[0]
    assert any(d == doc_id and needle in t for d, t in top), top


def test_citations_slice_back_exactly(seed_pipeline, seed_index):
    for question, _, _ in QUESTIONS:
        for hit in seed_pipeline.ask(question, k=10).hits:
            text, sha = read_document_text(seed_index.corpus_dir, hit.doc_id)
            assert text[hit.start_char : hit.end_char] == hit.text
            assert sha == hit.doc_sha256
            assert text.count("\n", 0, hit.start_char) + 1 == hit.line_start
            assert text.count("\n", 0, hit.end_char - 1) + 1 == hit.line_end
            for place in hit.also_in:  # the same passage elsewhere, cited as exactly
                other, other_sha = read_document_text(seed_index.corpus_dir, place.doc_id)
                assert other_sha == place.doc_sha256
                copy = other[place.start_char : place.end_char]
                assert is_near_duplicate(shingles(copy), shingles(hit.text))
                assert other.count("\n", 0, place.start_char) + 1 == place.line_start


def test_reprinted_passage_comes_back_once(seed_pipeline):
    response = seed_pipeline.ask(
        "Which officials in a 1988 death commission now head the Supreme Court for Judges?", k=10
    )
    texts = [" ".join(h.text.split()) for h in response.hits]
    assert len(texts) == len(set(texts))
    reprinted = [h for h in response.hits if "Hossein Ali Nayyeri" in h.text]
    assert len(reprinted) == 1, [(h.doc_id, h.start_char) for h in reprinted]
    hit = reprinted[0]
    others = {place.doc_id for place in hit.also_in}
    assert {hit.doc_id, *others} == {"003_bddc2f2a3ccead0c.txt", "004_344e65d2d89902b4.txt"}


def test_dense_scores_are_cosines_in_rank_order(seed_pipeline):
    """Dense mode scores a passage by its cosine and its best sentence's, mixed."""
    question = "Amnesty International report on the 1988 massacre"
    hits = seed_pipeline.ask(question, k=8, mode="dense").hits
    assert [h.rank for h in hits] == list(range(1, 9))
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 for s in scores)


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_blank_questions_are_refused(seed_pipeline, question):
    with pytest.raises(EmptyQuestion):
        seed_pipeline.ask(question)


def test_over_long_question_is_refused(seed_pipeline):
    with pytest.raises(InvalidQuery, match="over the limit"):
        seed_pipeline.ask("why " * 1000)


def test_search_options_per_call(seed_pipeline):
    """One SearchOptions per call, or its fields as keywords; bad values are one line."""
    from rag.errors import InvalidQuery
    from rag.options import SearchOptions

    options = SearchOptions(k=2, mode="bm25")
    assert len(seed_pipeline.ask("Camp Ashraf", options).hits) == 2
    widened = seed_pipeline.ask("Camp Ashraf", options, k=4)  # a keyword overrides
    assert len(widened.hits) == 4 and widened.mode == "bm25"
    for bad in ({"k": 0}, {"mode": "fuzzy"}, {"min_score": float("nan")}):
        with pytest.raises(InvalidQuery) as info:
            seed_pipeline.ask("Camp Ashraf", **bad)
        assert "\n" not in str(info.value) and next(iter(bad)) in str(info.value)
