"""The answer: the span inside the top passages that best answers the question, cited like
a hit, with a confidence that is the estimated probability that it is right; none when that
probability is too low (the corpus does not seem to answer).

One algorithm. Every span (a sentence, or two consecutive ones) of the top passages gets
features; when the question asks for a number, a date, a name or a place, only the spans
that carry one it does not already name compete (if any does); a linear score picks among
them; a logistic model of the picked span's features gives the confidence. Both sets of
weights are fitted by `rag eval calibrate` on the dev questions and checked there by
cross-validation (eval/abstention.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rag.answer_types import Expected, carries_new, expected_type, values_of
from rag.chunking import Chunk, is_heading, passage_spans
from rag.lexical import LexicalIndex, tokenize
from rag.models import Answer, Hit, Quote
from rag.structure import CELL_SEPARATOR, SECTION_SEPARATOR

# Which span answers (a conditional logit of "this span holds an answer" on the spans of
# the dev questions' top passages; its decision value is the selection score).
SELECTION_WEIGHTS = {
    "cosine": 0.149,
    "coverage": 0.214,
    "anchor": 0.285,
    "context": 0.146,
    "novelty": -0.085,
    "drop": -0.228,
    "pair": -0.011,
}
# Probability that the picked span is right (answerable question, span from a gold document
# holding an answer), from the picked span's features; fitted the same way.
CONFIDENCE_WEIGHTS = {
    "bias": -0.553,
    "selection": 1.143,
    "context": 1.12,
    "type_missing": 0.0,
    "unseen": -0.633,
}
PASSAGES_READ = 3  # spans are taken from this many top passages
# The scale of a passage's `drop`: how far the retrieval scores fall over this many passages
# of the same search (whatever k the caller asked for, so an answer does not depend on it).
SCORE_SCALE_DEPTH = 10
# "Which version ...?" and "When ...?" over release notes and changelogs: the bullet says
# what changed, the heading it sits under says in which release and when ("0.73.0
# (2022-01-23)"). A span that carries no such value of its own answers through that heading.
HEADED_KINDS = ("version", "date")
HEADING_LOOKBACK = 64  # passages searched back for a heading of a passage's section path
_HEADING_CHARS = 100  # a line standing alone longer than this is prose, not a heading
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s")
# How a release's heading opens: a version or a date, maybe after "v", "Version", "[".
_RELEASE_LEAD = re.compile(
    r"^[\[(#\s]*(?:v|version\s+|release\s+)?(?:\d|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|"
    r"oct|nov|dec)[a-z]*\.?\s+\d)",
    re.IGNORECASE,
)
_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")
# The words that give a question its form say nothing about what it is about.
_QUESTION_FORM = re.compile(
    r"\b(how|many|much|long|what|which|who|whom|whose|when|where|why|did|does|do|was|were|"
    r"is|are|according|name|named)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Heading:
    """A heading line of a document: where it is, and the passage that holds it."""

    chunk_id: str
    start: int  # offsets into the document
    end: int
    line: int  # 1-based line of `start`
    text: str


@dataclass(frozen=True)
class SpanScore:
    """A candidate answer span and what is known about it; `heading`: the heading above it
    that gives the asked-for version or date, when the span itself gives none."""

    hit: Hit
    start: int  # offsets into the document
    end: int
    text: str
    features: dict[str, float]
    heading: Heading | None = None

    @property
    def answer_text(self) -> str:
        """What the span answers with: its own text, or the heading it answers through."""
        return self.heading.text if self.heading is not None else self.text

    @property
    def selection(self) -> float:
        return self.selection_by(SELECTION_WEIGHTS)

    def selection_by(self, weights: dict[str, float]) -> float:
        """The span score under `weights` (those in use, or ones being fitted)."""
        return sum(weight * self.features[name] for name, weight in weights.items())

    def confidence_features(
        self, weights: dict[str, float] = SELECTION_WEIGHTS
    ) -> dict[str, float]:
        return {
            "selection": self.selection_by(weights),
            "context": self.features["context"],
            "type_missing": self.features["type_missing"],
            "unseen": self.features["unseen"],
        }


def confidence(features: dict[str, float], weights: dict[str, float] = CONFIDENCE_WEIGHTS) -> float:
    """Probability that the answer is right, from the picked span's features."""
    z = weights["bias"] + sum(weights[name] * value for name, value in features.items())
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


Candidate = tuple[Hit, int, int, str, int]  # hit, start and end in the document, text, sentences


def candidate_spans(hits: list[Hit], passages: int = PASSAGES_READ) -> list[Candidate]:
    """The spans of the top `passages` passages, with offsets into their documents.
    Headings name a topic and do not answer by themselves: a version or a date that only a
    heading gives answers through the spans under it (`heading_over`)."""
    return [
        (hit, hit.start_char + start, hit.start_char + end, hit.text[start:end], n)
        for hit in hits[:passages]
        for start, end, n in passage_spans(hit.text, hit.section)
        if not is_heading(hit.text[start:end], hit.section)
    ]


SpanVectors = Callable[[list[str]], np.ndarray]  # span texts -> their vectors
# Up to n passages of a hit's document before it, nearest first (the backend's lookup).
EarlierPassages = Callable[[Hit, int], list[Chunk]]


def _alone(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is a paragraph of its own (blank lines around it, any
    line ending)."""
    before = text[max(0, start - 8) : start].replace("\r", "")
    after = text[end : end + 8].replace("\r", "")
    return (start == 0 or before.endswith("\n\n")) and (
        end == len(text) or after.startswith("\n\n")
    )


def _heads(text: str, start: int, end: int, hit: Hit) -> bool:
    """Whether the line text[start:end] of a passage is a heading: one of its section path
    (the document's title aside: it names the whole document, not a part), or a short
    paragraph of its own that opens with a version or a date ("0.104.0 (2023-10-18)", "v2.1",
    "[1.2.0] - 2024-05-01", "May 2024"), as the headings of small sections joined into one
    passage stand there without being on its path; not a list item, a sentence, a command
    ("pip install x==1.2") or a phrase ("Python 3.8 or later")."""
    line = text[start:end].strip()
    if line == hit.title:
        return False
    if is_heading(line, hit.section):
        return True
    return (
        _alone(text, start, end)
        and len(line) <= _HEADING_CHARS
        and not _LIST_ITEM.match(line)
        and not line.endswith((".", ":", ";", ",", "!", "?"))
        and _release(line)
    )


def _release(heading: str) -> bool:
    """Whether a heading names a release: it opens with a version or a date ("0.104.0
    (2023-10-18)", "v2.1", "[1.2.0] - 2024-05-01", "May 2024"). A heading that only holds one
    further on (a news standfirst ending in its publication date) does not."""
    return bool(_RELEASE_LEAD.match(heading.strip()))


def _heading_at(chunk_id: str, offset: int, line: int, text: str, match: re.Match) -> Heading:
    """The heading line `match` of a passage text that starts at document `offset`."""
    lead = len(match.group()) - len(match.group().lstrip())
    body = match.group().strip()
    start = offset + match.start() + lead
    return Heading(
        chunk_id, start, start + len(body), line + text.count("\n", 0, match.start()), body
    )


def heading_over(
    hit: Hit,
    start: int,
    question: str,
    kind: Expected,
    earlier: EarlierPassages | None,
    on_path: dict[str, Heading | None] | None = None,
) -> Heading | None:
    """The nearest heading with a value of `kind` above the span at document offset `start`
    of `hit` (a heading line of the passage above the span, else the deepest such heading of
    its section path, found in the passages before it), when that value is one the question
    does not name. Only the heading the span sits under: one further back is another
    release's. `on_path` keeps the section path's heading per passage across its spans
    (one lookup of the passages before it, a round trip on Milvus)."""
    lines = [m for m in re.finditer(r"[^\n]+", hit.text) if hit.start_char + m.end() <= start]
    for m in reversed(lines):
        if not _heads(hit.text, m.start(), m.end(), hit) or not _release(m.group()):
            continue  # a heading that does not open with a version or date names no release
        if values_of(m.group(), kind):
            if not carries_new(m.group(), question, kind):
                return None  # the span's own release, which the question names
            return _heading_at(hit.chunk_id, hit.start_char, hit.line_start, hit.text, m)
        if values_of(m.group(), "version"):
            return None  # the span's release says no date: one further up is another's
    on_path = {} if on_path is None else on_path
    if hit.chunk_id not in on_path:
        on_path[hit.chunk_id] = _path_heading(hit, question, kind, earlier)
    return on_path[hit.chunk_id]


def _path_heading(
    hit: Hit, question: str, kind: Expected, earlier: EarlierPassages | None
) -> Heading | None:
    """The deepest heading of the hit's section path with a value of `kind`, where it stands
    in the passages before the hit, when the question does not name that value."""
    wanted = None
    for heading in reversed(hit.section.split(SECTION_SEPARATOR)):
        if heading == hit.title or not _release(heading):
            continue  # names the whole document, or no release ("Fixed", a news standfirst)
        if values_of(heading, kind):
            wanted = heading
            break
        if values_of(heading, "version"):
            return None  # the span's release says no date
    if wanted is None or earlier is None or not carries_new(wanted, question, kind):
        return None
    for chunk in earlier(hit, HEADING_LOOKBACK):
        for m in reversed(list(re.finditer(r"[^\n]+", chunk.text))):
            if m.group().strip() == wanted:
                return _heading_at(chunk.chunk_id, chunk.start, chunk.line_start, chunk.text, m)
    return None


def table_header(text: str, start: int, end: int, opens_document: bool = False) -> str:
    """The first row of the table whose row is text[start:end] (a passage's line; the
    readers write a row a line, cells joined by CELL_SEPARATOR), or "" when the line is no
    table row, is the first row, or the table starts before the passage (its first row
    there might be any row; `opens_document`: the passage starts the document, so a table
    it opens with starts there). A row says what it is only with its header: "github_events
    | 2.5 GB/s" is a speed of simdjson only under "file | simdjson | JSON for Modern C++"."""
    if CELL_SEPARATOR not in text[start:end]:
        return ""
    blanks = [m.end() for m in _BLANK_LINE.finditer(text, 0, start)]
    if not blanks and not opens_document:
        return ""  # the table may begin before the passage
    rows = [row.strip() for row in text[blanks[-1] if blanks else 0 : end].split("\n")]
    if len(rows) < 2 or not all(CELL_SEPARATOR in row for row in rows):
        return ""
    return rows[0]


def _terms(text: str) -> set[str]:
    return _terms_of([text])[0]


def _terms_of(texts: list[str]) -> list[set[str]]:
    return [set(tokens) for tokens in tokenize(texts, stem=True, stopwords=True)]


def _weighted_share(weights: dict[str, float], present: set[str]) -> float:
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in present) / total if total else 0.0


def score_spans(
    question: str,
    xq: np.ndarray,
    hits: list[Hit],
    vectors_of: SpanVectors,
    lexical: LexicalIndex | None,
    earlier: EarlierPassages | None = None,
    scores: list[float] | None = None,
) -> list[SpanScore]:
    """Every span of the top passages with its features:

    - cosine: meaning, the span's vector against the question's (stored at build time);
    - coverage: share of the question's content words in the span (a table row with its
      table's header row: `table_header`);
    - anchor: the same, each word weighted by its rarity, question words aside;
    - context: share of the question's subject (its terms weighted by rarity, question
      words aside) found in the span's passage and heading: a near-topic question about a
      detail the corpus never gives misses its rare terms here;
    - novelty: share of the span's words the question does not already use (a span that
      only restates the question does not answer it);
    - type_missing: the question asks for a number, date, name or place and the span
      holds none that the question does not already name (for a version or a date, nor
      does the heading it sits under: `heading_over`);
    - drop: how far the passage's retrieval score falls below the first passage's, as a
      share of the fall over the search's first SCORE_SCALE_DEPTH passages (`scores`;
      by default the hits' own): a second passage scored nearly as high as the first is
      nearly as likely to hold the answer, one far below it is not;
    - rank, pair: the passage's rank (0 for the first; not weighted since `drop`, kept
      for eval/answer_fit_study.py) and a second sentence of context;
    - unseen: share of the question's content words that no passage uses.
    """
    kind = expected_type(question)
    candidates = candidate_spans(hits)
    if not candidates:
        return []
    wanted = _terms(question)
    subject_text = _QUESTION_FORM.sub(" ", question)
    if lexical is not None:
        subject = lexical.term_weights(subject_text)
        unseen = lexical.unseen_share(question)
    else:
        subject, unseen = dict.fromkeys(_terms(subject_text), 1.0), 0.0
    vectors = vectors_of([text for _, _, _, text, _ in candidates])
    cosines = np.asarray(vectors, dtype=np.float32) @ np.asarray(xq, dtype=np.float32)
    passages = hits[:PASSAGES_READ]
    drop = score_drop(scores if scores is not None else [h.score for h in hits])
    headers = [
        table_header(hit.text, start - hit.start_char, end - hit.start_char, hit.start_char == 0)
        for hit, start, end, _, _ in candidates
    ]
    # One tokenizer call for every span, table header and passage: a call has a fixed cost.
    terms = _terms_of(
        [text for _, _, _, text, _ in candidates]
        + headers
        + [f"{hit.title}\n{hit.section}\n{hit.text}" for hit in passages]
    )
    spans_n = len(candidates)
    context = {
        hit.chunk_id: _weighted_share(subject, own)
        for hit, own in zip(passages, terms[2 * spans_n :], strict=True)
    }
    scored = []
    on_path: dict[str, Heading | None] = {}
    for (hit, start, end, text, n), cosine, own, header in zip(
        candidates, cosines.tolist(), terms[:spans_n], terms[spans_n : 2 * spans_n], strict=True
    ):
        seen = own | header  # a table row is read under its header
        carries = carries_new(text, question, kind)
        heading = None
        if not carries and kind in HEADED_KINDS:
            heading = heading_over(hit, start, question, kind, earlier, on_path)
        scored.append(
            SpanScore(
                hit,
                start,
                end,
                text,
                {
                    "cosine": float(cosine),
                    "coverage": len(wanted & seen) / len(wanted) if wanted else 0.0,
                    "anchor": _weighted_share(subject, seen),
                    "context": context[hit.chunk_id],
                    "novelty": len(own - wanted) / len(own) if own else 0.0,
                    "type_missing": 0.0 if carries or heading is not None else 1.0,
                    "drop": drop(hit.score),
                    "rank": float(hit.rank - 1),
                    "pair": float(n - 1),
                    "unseen": unseen,
                },
                heading,
            )
        )
    return scored


def score_drop(scores: list[float]) -> Callable[[float], float]:
    """A retrieval score's fall below the first of `scores` (best first), as a share of the
    fall over the first SCORE_SCALE_DEPTH of them: scores of any mode and scale (cosines,
    BM25, fused z-scores) become comparable, and a search that finds one clear winner
    tells apart from one where the first few are close."""
    top = scores[:SCORE_SCALE_DEPTH]
    spread = top[0] - top[-1] if top else 0.0
    if spread <= 0:
        return lambda _: 0.0
    return lambda score: max(0.0, top[0] - score) / spread


def typed(scored: list[SpanScore]) -> list[int]:
    """Positions of the spans that compete: those carrying the asked-for type, or all when
    none does (`type_missing` then; no picked dev span had it, so its confidence weight
    was fitted to 0 and stays a feature for larger question sets). On the dev questions
    (5-fold, 3 seeds) the right span is picked for 76% of them, against 73% with the type
    as one weighted feature among the others."""
    carrying = [i for i, s in enumerate(scored) if not s.features["type_missing"]]
    return carrying or list(range(len(scored)))


def best_span(scored: list[SpanScore]) -> SpanScore | None:
    return max((scored[i] for i in typed(scored)), key=lambda s: s.selection) if scored else None


def quote_of(best: SpanScore) -> Quote:
    """The span itself, cited inside its passage."""
    hit = best.hit
    line = hit.line_start + hit.text.count("\n", 0, best.start - hit.start_char)
    return Quote(
        text=best.text,
        doc_id=hit.doc_id,
        chunk_id=hit.chunk_id,
        start_char=best.start,
        end_char=best.end,
        line_start=line,
        line_end=line + best.text[:-1].count("\n"),
        doc_sha256=hit.doc_sha256,
    )


def answer_of(best: SpanScore, sure: float) -> Answer:
    """The answer from the best span and its confidence `sure`, cited like its passage; a
    span that answers through its heading gives the heading, cited where it stands, with
    the span as the evidence."""
    quote, hit, heading = quote_of(best), best.hit, best.heading
    fields = quote.model_dump()
    if heading is not None:
        fields.update(
            text=heading.text,
            chunk_id=heading.chunk_id,
            start_char=heading.start,
            end_char=heading.end,
            line_start=heading.line,
            line_end=heading.line,
        )
    return Answer(
        **fields,
        title=hit.title,
        section=hit.section,
        rank=hit.rank,
        confidence=round(sure, 4),
        evidence=quote if heading is not None else None,
    )
