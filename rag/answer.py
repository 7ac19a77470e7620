"""The answer: the sentence inside the top passages that best answers the question, cited
like a hit, with a confidence; none when the corpus does not seem to answer at all."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rag.chunking import passage_spans
from rag.lexical import tokenize
from rag.models import Answer, Hit

# Logistic calibration of the confidence, fitted by `rag eval calibrate` on
# eval/questions.jsonl (answerable against unanswerable questions); see eval/abstention.md.
CONFIDENCE_WEIGHTS = {"bias": -0.783, "cosine": 4.731, "coverage": 1.698, "unseen": -3.167}
# Which span answers: meaning first, the question's own words next; a span from a lower
# passage or of one sentence loses a little (weights chosen by leave-one-out on the question
# set, see eval/answers.md).
COVERAGE_WEIGHT = 0.25
RANK_PENALTY = 0.1
PAIR_BONUS = 0.1
_PASSAGES_READ = 3  # spans are taken from this many top passages


@dataclass(frozen=True)
class SentenceScore:
    hit: Hit
    start: int  # offsets into the document
    end: int
    text: str
    cosine: float
    coverage: float
    sentences: int  # 1 or 2
    unseen: float = 0.0  # share of the question's content words the corpus never uses

    def features(self) -> dict[str, float]:
        return {"cosine": self.cosine, "coverage": self.coverage, "unseen": self.unseen}

    @property
    def selection_score(self) -> float:
        """Which span answers: meaning, then the question's own words, then the passage
        rank, then a second sentence of context."""
        return (
            self.cosine
            + COVERAGE_WEIGHT * self.coverage
            - RANK_PENALTY * (self.hit.rank - 1)
            + PAIR_BONUS * (self.sentences - 1)
        )


def _terms(text: str) -> set[str]:
    return set(tokenize([text], stem=True, stopwords=True)[0])


def confidence(features: dict[str, float], weights: dict[str, float] = CONFIDENCE_WEIGHTS) -> float:
    """Probability-like confidence in [0, 1] from the best sentence's features."""
    z = weights["bias"] + sum(weights[name] * value for name, value in features.items())
    return 1.0 / (1.0 + math.exp(-z))


Candidate = tuple[Hit, int, int, str, int]  # hit, start and end in the document, text, sentences


def candidate_spans(hits: list[Hit], passages: int = _PASSAGES_READ) -> list[Candidate]:
    """The spans of the top `passages` passages, with offsets into their documents."""
    return [
        (hit, hit.start_char + start, hit.start_char + end, hit.text[start:end], n)
        for hit in hits[:passages]
        for start, end, n in passage_spans(hit.text, hit.section)
    ]


SpanVectors = Callable[[list[str]], np.ndarray]  # span texts -> their vectors


def score_sentences(
    question: str,
    xq: np.ndarray,
    hits: list[Hit],
    vectors_of: SpanVectors,
    unseen: float = 0.0,
) -> list[SentenceScore]:
    """Every span of the top passages, scored by meaning (cosine with the question) and by
    wording (share of the question's content words it contains); `vectors_of` gives the
    spans' vectors (stored in the index at build time). `unseen` (see
    LexicalIndex.unseen_share) is carried along for the confidence."""
    candidates = candidate_spans(hits)
    if not candidates:
        return []
    wanted = _terms(question)
    vectors = vectors_of([text for _, _, _, text, _ in candidates])
    cosines = np.asarray(vectors, dtype=np.float32) @ np.asarray(xq, dtype=np.float32)
    return [
        SentenceScore(
            hit,
            start,
            end,
            text,
            float(cosine),
            len(wanted & _terms(text)) / len(wanted) if wanted else 0.0,
            n,
            unseen,
        )
        for (hit, start, end, text, n), cosine in zip(candidates, cosines.tolist(), strict=True)
    ]


def best_sentence(scored: list[SentenceScore]) -> SentenceScore | None:
    if not scored:
        return None
    return max(scored, key=lambda s: s.selection_score)


def answer_of(best: SentenceScore, sure: float) -> Answer:
    """The answer from the best span and its confidence `sure`, cited like its passage."""
    hit = best.hit
    lead = hit.text[: best.start - hit.start_char]
    return Answer(
        text=best.text,
        doc_id=hit.doc_id,
        title=hit.title,
        section=hit.section,
        chunk_id=hit.chunk_id,
        start_char=best.start,
        end_char=best.end,
        line_start=hit.line_start + lead.count("\n"),
        line_end=hit.line_start + lead.count("\n") + best.text[:-1].count("\n"),
        doc_sha256=hit.doc_sha256,
        rank=hit.rank,
        confidence=round(sure, 4),
    )
