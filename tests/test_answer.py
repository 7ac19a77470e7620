"""The answer span, its confidence, abstention, and the calibration behind them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rag.answer import (
    SCORE_SCALE_DEPTH,
    SELECTION_WEIGHTS,
    SpanScore,
    candidate_spans,
    confidence,
    heading_over,
    score_drop,
    table_header,
)
from rag.answer_types import carries_new, expected_type, values_of
from rag.chunking import SPAN_CHARS, Chunk
from rag.corpus import read_document_text
from rag.evaluation.calibration import Collected, choose_threshold, fit_selection
from rag.lexical import LexicalIndex
from rag.models import Hit
from rag.pipeline import Pipeline

from .conftest import RELEASE_NOTES


def test_confidence_is_a_probability_rising_with_evidence():
    base = {"selection": 0.0, "context": 0.2, "type_missing": 1.0, "unseen": 0.0}
    better = {**base, "selection": 1.0, "context": 0.9, "type_missing": 0.0}
    assert 0.0 < confidence(base) < confidence(better) < 1.0


def test_words_the_corpus_never_uses_lower_the_confidence():
    lexical = LexicalIndex.build(["Camp Ashraf lies north of Baghdad."], True, True)
    assert lexical.unseen_share("Is Camp Ashraf north of Baghdad?") == 0.0
    assert lexical.unseen_share("The Eiffel Tower?") == 1.0
    assert lexical.unseen_share("Ashraf or the Eiffel Tower?") == pytest.approx(2 / 3)
    features = {"selection": 0.5, "context": 0.5, "type_missing": 0.0}
    assert confidence({**features, "unseen": 1.0}) < confidence({**features, "unseen": 0.0})


def test_candidate_spans_are_sentences_and_short_pairs_without_headings():
    text = "Camp Ashraf\nIt lies north. It is 77 kilometers away.\n" + "A long one. " + "x" * 400
    hit = Hit(
        rank=1, score=1.0, doc_id="d.txt", title="D", chunk_id="d.txt#0", section="Camp Ashraf",
        text=text, start_char=100, end_char=100 + len(text), line_start=1, line_end=3,
        doc_sha256="0" * 64,
    )  # fmt: skip
    spans = candidate_spans([hit])
    texts = [t for _, _, _, t, _ in spans]
    assert "Camp Ashraf" not in texts
    assert "It lies north. It is 77 kilometers away." in texts  # a pair within SPAN_CHARS
    assert all(len(t) <= SPAN_CHARS or n == 1 for _, _, _, t, n in spans)
    for _, start, end, span_text, _ in spans:
        assert text[start - 100 : end - 100] == span_text  # offsets into the document


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many lorry drivers were arrested?", "number"),
        ("When did Montazeri die?", "date"),
        ("In what year was he born?", "date"),
        ("Who wrote the novel?", "name"),
        ("Which British minister pushed Europe?", "name"),
        ("In which Swedish city did they rally?", "place"),
        ("Where is Camp Ashraf?", "place"),
        ("What did Amnesty recommend?", "any"),
        ("Which FastAPI version stopped supporting Python 3.7?", "version"),
        ("Which Django release shipped the fix?", "version"),
        ("What shell command do they run to get a secret key?", "command"),
        ("What exact-match score did the joint model get?", "number"),
        ("Which requirement number asks for escaping?", "number"),
        ("What is the author's contact email?", "contact"),
        ("Which URL serves the docs?", "contact"),
    ],
)
def test_expected_answer_type_from_the_question(question, kind):
    assert expected_type(question) == kind


def test_a_span_carries_the_asked_type_only_as_new_information():
    question = "How many people were executed in 1988?"
    assert not carries_new("In 1988 the regime executed people.", question, "number")
    assert carries_new("Some 30,000 people were executed in 1988.", question, "number")
    assert carries_new("Thirty thousand were killed.", question, "number")
    who = "Who saved Massoud Rajavi?"
    assert not carries_new("Only Massoud Rajavi was spared.", who, "name")
    assert carries_new("His brother, Kazem Rajavi, campaigned.", who, "name")
    version = "Which FastAPI version stopped supporting Python 3.7?"
    assert not carries_new("Drop support for Python 3.7.", version, "version")
    assert carries_new("0.104.0 (2023-10-18)", version, "version")
    command = "What command starts the container in the background?"
    assert carries_new("$ docker run -d --name mycontainer -p 80:80 myimage", command, "command")
    email = "What is the contact email of the author?"
    assert carries_new("Contact: info@martin-thoma.de.", email, "contact")
    assert not carries_new("The author can be reached by email.", email, "contact")
    assert values_of("See https://x.org/a, or www.y.com.", "contact") == {
        "https://x.org/a",
        "www.y.com",
    }
    assert carries_new("docker run -d -p 80:80 myimage", command, "command")
    assert not carries_new("Then start the container in the background.", command, "command")
    assert not carries_new("and run it with the -d option to detach it.", command, "command")
    assert values_of("Jack Straw met the European Union in 2009.", "name") == {
        "jack straw",
        "european union",
    }


def _span(features: dict[str, float]) -> SpanScore:
    hit = Hit(
        rank=1, score=1.0, doc_id="d.txt", title="D", chunk_id="d.txt#0", section="", text="x",
        start_char=0, end_char=1, line_start=1, line_end=1, doc_sha256="0" * 64,
    )  # fmt: skip
    blank = dict.fromkeys([*SELECTION_WEIGHTS, "type_missing", "unseen"], 0.0)
    return SpanScore(hit, 0, 1, "x", {**blank, **features})


def test_the_span_score_is_fitted_to_pick_the_right_span():
    """Per question one span holds the answer: it has the higher coverage, while cosine is
    noise; the conditional logit learns to pick by coverage."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(40):
        right = int(rng.integers(0, 5))
        spans = [
            _span({"cosine": float(rng.normal(0.5, 0.1)), "coverage": 0.8 if j == right else 0.2})
            for j in range(5)
        ]
        rows.append(Collected(None, spans, [j == right for j in range(5)]))  # type: ignore[arg-type]
    weights = fit_selection(rows)
    assert weights["coverage"] > 5 * abs(weights["cosine"])


def test_spans_without_the_asked_type_do_not_compete():
    from rag.answer import best_span

    restates = _span({"cosine": 0.9, "coverage": 1.0, "type_missing": 1.0})
    answers = _span({"cosine": 0.4, "coverage": 0.2})
    assert best_span([restates, answers]) is answers
    # When no span carries the type, the best of all answers (and confidence is told).
    assert best_span([restates]) is restates


def test_score_drop_by_hand_on_any_scale():
    fused = [3.0, 2.5, 2.0, 1.5, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, -4.0]  # the 11th sets nothing
    drop = score_drop(fused)
    assert [drop(s) for s in fused[:3]] == pytest.approx([0.0, 0.2, 0.4])
    assert drop(0.5) == pytest.approx(1.0)
    # Cosines ten times closer together fall by the same shares.
    cosines = score_drop([0.5 + s / 50 for s in fused])
    assert cosines(0.5 + 2.5 / 50) == pytest.approx(0.2)
    # One passage, or all tied: nothing falls.
    assert score_drop([7.0])(7.0) == 0.0 and score_drop([1.0, 1.0])(1.0) == 0.0
    assert score_drop([])(1.0) == 0.0


def test_the_answer_does_not_depend_on_how_many_passages_are_asked_for(seed_pipeline):
    """The scale of `drop` comes from the search's first SCORE_SCALE_DEPTH passages whatever
    k is; the answer reads the first k passages (at most 3)."""
    question = "How far is Camp Ashraf from Baghdad?"
    wide = seed_pipeline.ask(question, k=SCORE_SCALE_DEPTH + 5).answer
    for k in (3, 5, SCORE_SCALE_DEPTH):
        assert seed_pipeline.ask(question, k=k).answer == wide
    one = seed_pipeline.ask(question, k=1)
    assert len(one.hits) == 1
    assert one.answer is None or one.answer.chunk_id == one.hits[0].chunk_id


def test_choose_threshold_by_hand():
    scored = [(True, 0.9), (True, 0.6), (True, 0.4), (False, 0.5), (False, 0.2)]
    # Below 0.45 only the 0.2 and the 0.4 fall (one answerable); below 0.55 also the 0.5.
    assert choose_threshold(scored, max_share=0.34) == pytest.approx(0.55)
    assert choose_threshold(scored, max_share=0.0) == pytest.approx(0.3)


def test_answer_cites_the_sentence_exactly(seed_pipeline, seed_index):
    response = seed_pipeline.ask("How far is Camp Ashraf from Baghdad?")
    answer = response.answer
    assert response.answerable is True and answer is not None
    assert "77 kilometers" in answer.text and 0.0 <= answer.confidence <= 1.0
    text, _ = read_document_text(seed_index.corpus_dir, answer.doc_id)
    assert text[answer.start_char : answer.end_char] == answer.text
    source = response.hits[answer.rank - 1]
    assert source.start_char <= answer.start_char < answer.end_char <= source.end_char


@pytest.mark.parametrize(
    "question", ["Who won the 2018 FIFA World Cup?", "Who designed the Eiffel Tower?"]
)
def test_far_off_questions_are_not_answered(seed_pipeline, question):
    response = seed_pipeline.ask(question)
    assert response.answer is None and response.answerable is False
    assert response.hits  # the closest passages still come back, for the reader to judge


class _Counting:
    """Wraps an embedder and records what it embeds."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, []
        self.dimension = inner.dimension

    def embed_batch(self, texts, kind):
        self.calls.append((kind, list(texts)))
        return self.inner.embed_batch(texts, kind)


def test_answers_look_span_vectors_up_in_the_index(seed_pipeline, real_embedder):
    counting = _Counting(real_embedder)
    pipeline = Pipeline(seed_pipeline.settings, seed_pipeline.index, counting)
    response = pipeline.ask("How far is Camp Ashraf from Baghdad?")
    assert response.answer is not None and "77 kilometers" in response.answer.text
    assert [kind for kind, _ in counting.calls] == ["query"]  # the question alone


def test_an_index_without_span_vectors_still_answers(seed_pipeline, real_embedder):
    bare = replace(
        seed_pipeline.index,
        span_keys=np.zeros(0, dtype="S64"),
        span_vectors=np.zeros((0, 384), dtype=np.float32),
    )  # as built with RAG_ANSWERS=false
    counting = _Counting(real_embedder)
    response = Pipeline(seed_pipeline.settings, bare, counting).ask(
        "How far is Camp Ashraf from Baghdad?"
    )
    assert response.answer is not None and "77 kilometers" in response.answer.text
    assert [kind for kind, _ in counting.calls] == ["query", "document"]  # a few spans, now


def _notes_hit(text: str, section: str, start: int, ordinal: int = 2) -> Hit:
    return Hit(
        rank=1, score=1.0, doc_id="notes.md", title="notes", chunk_id=f"notes.md#{ordinal}",
        section=section, text=text, start_char=start, end_char=start + len(text),
        line_start=10, line_end=10 + text.count("\n"), doc_sha256="0" * 64,
    )  # fmt: skip


def test_a_release_heading_answers_for_the_bullets_under_it():
    document = (
        "1.2.0 (May 3, 2024)\n\nFixed\n\n- Fix the reload loop.\n\n- Keep headers.\n\n"
        "1.1.0 (April 2, 2024)\n\nAdded\n\n- Drop support for Python 3.8.\n"
    )
    first = Chunk("notes.md#0", "notes.md", 0, 0, 60, 1, 7, "1.2.0 (May 3, 2024)", document[:60])
    # A passage that starts past its heading: the heading is on its path, in the passage before.
    cut = document.index("- Keep")
    later = _notes_hit(document[cut:], "1.2.0 (May 3, 2024) > Fixed", cut, ordinal=1)
    span_at = cut
    question = "Which release kept the headers?"
    heading = heading_over(later, span_at, question, "version", lambda hit, n: [first])
    assert heading is not None and heading.text == "1.2.0 (May 3, 2024)"
    assert document[heading.start : heading.end] == heading.text and heading.line == 1
    assert heading.chunk_id == "notes.md#0"
    # A heading line inside the passage, above the span, comes first (small sections joined
    # into one passage sit under the heading they share, here the file's name).
    joined = _notes_hit(document, "notes", 0)
    python = document.index("- Drop")
    inside = heading_over(joined, python, "Which version dropped Python 3.8?", "version", None)
    assert inside is not None and inside.text == "1.1.0 (April 2, 2024)"
    assert document[inside.start : inside.end] == inside.text
    assert inside.line == 10 + document[:python].count("\n") - 4
    # A date question takes the same heading; one whose value the question names does not.
    assert heading_over(joined, python, "When was Python 3.8 dropped?", "date", None) is not None
    named = "Which release after 1.1.0 dropped Python 3.8?"
    assert heading_over(joined, python, named, "version", None) is None
    # Only the headings a span sits under: none above it in the passage, none on its path.
    assert heading_over(joined, document.index("- Fix"), question, "version", None) is not None
    top = _notes_hit("Fixed\n\n- Fix the reload loop.", "notes > Fixed", 100)
    assert heading_over(top, 107, question, "version", lambda hit, n: [first]) is None
    # A list item or a sentence standing alone is not a heading.
    listed = _notes_hit("- Version 2.0.0 (June 1, 2024)\n\nThe fix.", "notes", 0)
    assert heading_over(listed, 33, question, "version", None) is None


KEPT = "Which release kept the headers?"


def test_a_heading_is_only_the_release_a_span_sits_under():
    # The span's release gives no date: the dated release above it is another one.
    notes = "0.11.0 (June 2, 2020)\n\n- Add reload.\n\n0.10.0\n\n- Remove logger=.\n"
    hit = _notes_hit(notes, "notes", 0)
    at = notes.index("- Remove")
    assert heading_over(hit, at, "When was logger= removed?", "date", None) is None
    assert heading_over(hit, at, "Which release removed logger=?", "version", None).text == "0.10.0"
    # Not headings: a command, a phrase, or the document's title (it names the whole text).
    for line in ("pip install foo==1.2.3", "Python 3.8 or later", "What you may configure"):
        text = f"Intro\n\n{line}\n\nThe server now reloads on change."
        found = heading_over(_notes_hit(text, "notes", 0), text.index("The"), KEPT, "version", None)
        assert found is None, line
    news = "Brisbane floods of 2011\n\nResidents were evacuated on a Thursday."
    titled = _notes_hit(news, "Brisbane floods of 2011", 0).model_copy(
        update={"title": "Brisbane floods of 2011"}
    )
    assert (
        heading_over(titled, news.index("Residents"), "When were they evacuated?", "date", None)
        is None
    )
    # A news page's standfirst heading ends in its publication date: it names no release,
    # in the passage or on the path.
    stand = "The island's recovery: what is its secret?Monday, 6 January 2020"
    article = f"{stand}\n\nBut the mine shut down after the outbreak of World War I."
    standing = _notes_hit(article, f"Redonda > {stand}", 0)
    asked = "When did the mine shut down?"
    assert heading_over(standing, article.index("But"), asked, "date", None) is None
    below = _notes_hit("The goats were flown out.", f"Redonda > {stand}", 500)
    earlier = [Chunk("notes.md#0", "notes.md", 0, 0, len(article), 1, 3, "Redonda", article)]
    assert heading_over(below, 500, asked, "date", lambda hit, n: earlier) is None
    # Any line ending: a plain-text changelog written with CRLF.
    crlf = "Changes\r\n\r\n2.1.0 (May 3, 2024)\r\n\r\n- Keep headers.\r\n"
    found = heading_over(
        _notes_hit(crlf, "Changes", 0), crlf.index("- Keep"), KEPT, "version", None
    )
    assert found is not None and found.text == "2.1.0 (May 3, 2024)"
    assert crlf[found.start : found.end] == found.text and found.line == 12


def test_an_answer_through_its_heading_cites_both(release_notes_index, real_embedder):
    """Real release notes (tests/data/realdocs/md/uvicorn-release-notes.md): the bullet that
    says what changed sits under the release's heading, which answers "which version"."""
    from rag.sources import read_cited_span
    from rag.store import load_index

    settings = release_notes_index
    corpus, source = settings.corpus_dir, RELEASE_NOTES
    pipeline = Pipeline.open(settings, embedder=real_embedder)
    index = load_index(settings.index_dir)
    record = index.documents[source.name]
    earlier = "Which Uvicorn version added an option to set the websocket ping interval?"
    for question, version, said in [
        ("Which Uvicorn version dropped the logger= config setting?", "0.10.0", "logger="),
        ("When did Uvicorn add the WebSocketsSansIOProtocol?", "0.35.0", "WebSocketsSansIO"),
        (earlier, "0.15.0", "ping interval"),  # the heading is in the passage before
    ]:
        response = pipeline.ask(question)
        answer = response.answer
        assert answer is not None and answer.text.startswith(version), (question, answer)
        evidence = answer.evidence
        assert evidence is not None and said in evidence.text
        for quote in (answer, evidence):
            where = (quote.start_char, quote.end_char)
            assert read_cited_span(corpus, record, *where, build=index.path).text == quote.text
        source_hit = response.hits[answer.rank - 1]
        assert source_hit.start_char <= evidence.start_char < evidence.end_char
        assert evidence.end_char <= source_hit.end_char
        assert answer.start_char < evidence.start_char  # the heading stands above
        assert answer.chunk_id.startswith(source.name + "#")
        if question == earlier:
            assert answer.chunk_id != source_hit.chunk_id
            assert answer.text not in source_hit.text


def test_a_table_row_is_read_with_its_header():
    text = (
        "Let us run some benchmarks.\n\nfile | simdjson | JSON for Modern C++\n"
        "apache_builds | 2.3 GB/s | 0.098 GB/s\ngithub_events | 2.5 GB/s | 0.093 GB/s\n\n"
        "Thus simdjson parses at about 2 GB/s."
    )

    def header_of(line: str) -> str:
        at = text.index(line)
        return table_header(text, at, at + len(line))

    assert (
        header_of("github_events | 2.5 GB/s | 0.093 GB/s")
        == "file | simdjson | JSON for Modern C++"
    )
    assert header_of("file | simdjson | JSON for Modern C++") == ""  # the header itself
    assert header_of("Thus simdjson parses at about 2 GB/s.") == ""  # not a row
    # A table the passage opens with may have begun before it: its first row is any row;
    # unless the passage opens the document.
    cut = text[text.index("file |") :]
    row = (cut.index("github"), cut.index("\n\n"))
    assert table_header(cut, *row) == ""
    assert table_header(cut, *row, opens_document=True).startswith("file | simdjson")
    crlf = text.replace("\n", "\r\n")
    at = crlf.index("github")
    assert table_header(crlf, at, crlf.index("\r", at)) == "file | simdjson | JSON for Modern C++"
