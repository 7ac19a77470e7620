"""The answer: the sentence inside the top passages that best answers the question, cited
like a hit, with a confidence; none when the corpus does not seem to answer at all."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from rag.embedding import Embedder
from rag.lexical import tokenize
from rag.models import Answer, Hit
from rag.structure import split_sentences

# Logistic calibration of the confidence, fitted by `rag eval --calibrate` on
# eval/questions.jsonl (answerable against unanswerable questions); see eval/abstention.md.
CONFIDENCE_WEIGHTS = {"bias": -1.689, "cosine": 5.311, "coverage": 2.329}
# Which sentence answers: meaning first, the question's own words as a tie-breaker.
COVERAGE_WEIGHT = 0.5
_PASSAGES_READ = 3  # sentences are taken from this many top passages
_EMBEDDED_SPANS = 4  # of which at most this many are embedded
# An answer is the best sentence and, when it is short, the next one of its paragraph:
# news prose often names the subject in one sentence and gives the figure in the next.
SPAN_CHARS = 320


_NUMBER = re.compile(r"\d")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:[\s-][A-Z][a-z]+)+")
_WANTS_NUMBER = re.compile(
    r"^\s*(how (many|much|far|long|old)|when|what (year|date|percentage|share)|in what year|"
    r"roughly how)",
    re.IGNORECASE,
)
_WANTS_NAME = re.compile(
    r"^\s*(who|whose|which [a-z]+ (activist|lawyer|minister|official|"
    r"cleric|writer|journalist|director|researcher|agent))",
    re.IGNORECASE,
)
TYPE_BONUS = 0.1  # a sentence holding the kind of thing asked for (number, name) gains this


def answer_type_match(question: str, sentence: str) -> float:
    """1.0 when the sentence holds what the question asks for: a number or date for
    "how many / when", a name for "who"; 0.0 when it asks for one and the sentence has
    none; 0.5 when the question gives no cue."""
    if _WANTS_NUMBER.search(question):
        return 1.0 if _NUMBER.search(sentence) else 0.0
    if _WANTS_NAME.search(question):
        return 1.0 if _NAME.search(sentence) else 0.0
    return 0.5


@dataclass(frozen=True)
class SentenceScore:
    hit: Hit
    start: int  # offsets into the document
    end: int
    text: str
    cosine: float
    coverage: float
    type_match: float

    def features(self) -> dict[str, float]:
        return {"cosine": self.cosine, "coverage": self.coverage}

    @property
    def selection_score(self) -> float:
        """Which sentence answers: meaning first, then the question's own words, then
        the kind of thing asked for."""
        return self.cosine + COVERAGE_WEIGHT * self.coverage + TYPE_BONUS * self.type_match


def _terms(text: str) -> set[str]:
    return set(tokenize([text], stem=True, stopwords=True)[0])


def confidence(features: dict[str, float], weights: dict[str, float] = CONFIDENCE_WEIGHTS) -> float:
    """Probability-like confidence in [0, 1] from the best sentence's features."""
    z = weights["bias"] + sum(weights[name] * value for name, value in features.items())
    return 1.0 / (1.0 + math.exp(-z))


def score_sentences(
    question: str, xq: np.ndarray, hits: list[Hit], embedder: Embedder
) -> list[SentenceScore]:
    """Every sentence of the top passages, scored by meaning (cosine with the question)
    and by wording (share of the question's content words it contains)."""
    candidates: list[tuple[Hit, int, int, str]] = []
    for hit in hits[:_PASSAGES_READ]:
        for line in re.finditer(r"[^\n]+", hit.text):  # a heading line is not a sentence start
            if line.group().strip() == hit.section:
                continue  # headings name a topic; they do not answer
            sentences = split_sentences(hit.text, line.start(), line.end())
            for i, (start, end) in enumerate(sentences):
                if i + 1 < len(sentences) and sentences[i + 1][1] - start <= SPAN_CHARS:
                    end = sentences[i + 1][1]
                text = hit.text[start:end]
                candidates.append((hit, hit.start_char + start, hit.start_char + end, text))
    if not candidates:
        return []
    wanted = _terms(question)
    cheap = []
    for hit, start, end, text in candidates:
        coverage = len(wanted & _terms(text)) / len(wanted) if wanted else 0.0
        cheap.append((coverage, answer_type_match(question, text), hit, start, end, text))
    # Embedding is the cost: only the spans that share most words with the question (and
    # hold the kind of thing asked for) are embedded.
    cheap.sort(key=lambda c: -(c[0] + TYPE_BONUS * c[1] - 0.05 * (c[2].rank - 1)))
    cheap = cheap[:_EMBEDDED_SPANS]
    vectors = embedder.embed_batch([c[5] for c in cheap], "document")
    cosines = vectors @ np.asarray(xq, dtype=np.float32)
    return [
        SentenceScore(hit, start, end, text, float(cosine), coverage, kind)
        for (coverage, kind, hit, start, end, text), cosine in zip(
            cheap, cosines.tolist(), strict=True
        )
    ]


def best_sentence(scored: list[SentenceScore]) -> SentenceScore | None:
    if not scored:
        return None
    return max(scored, key=lambda s: s.selection_score)


def answer_of(best: SentenceScore, sure: float) -> Answer:
    """The answer from the best span and its confidence `sure`."""
    return Answer(
        text=best.text,
        doc_id=best.hit.doc_id,
        start_char=best.start,
        end_char=best.end,
        rank=best.hit.rank,
        confidence=round(sure, 4),
    )
