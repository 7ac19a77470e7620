"""What an evaluation produces: every number and every per-question outcome."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field

# A figure that does not apply (abstention on a set with no unanswerable question) is NaN,
# which JSON writes as null: read back, null is NaN again (`--compare` reads old results).
Figure = Annotated[float, BeforeValidator(lambda v: math.nan if v is None else v)]


class QuestionResult(BaseModel):
    id: str
    question: str
    answerable: bool
    relevant_ranks: list[int] = Field(
        description="Ranks of the passages from a gold document that contain an answer."
    )
    gold_doc_ids: list[str]
    ranked_doc_ids: list[str] = Field(description="Documents in the order their passages came.")
    top_doc_id: str | None
    top_text: str | None
    top_score: float | None
    citations: int
    citations_exact: int
    took_ms: float
    answer_text: str | None = None
    answer_doc_id: str | None = None
    answer_correct: bool | None = Field(
        None, description="The answer span is from a gold document and contains an answer."
    )
    abstained: bool | None = None
    confidence: float | None = None
    format: str | None = None


def per_question_figures(results: list[QuestionResult]) -> dict[str, dict[str, float]]:
    """Per question: reciprocal rank (MRR@10), Hit@1, Hit@5, answer right, abstained; the
    means are the report's figures, and they say which questions a change moved."""
    figures: dict[str, dict[str, float]] = {
        "Hit@1": {},
        "Hit@5": {},
        "MRR@10": {},
        "answer accuracy": {},
        "abstain recall": {},
    }
    for r in results:
        if r.answerable:
            first = min((x for x in r.relevant_ranks if x <= 10), default=None)
            figures["Hit@1"][r.id] = float(first == 1)
            figures["Hit@5"][r.id] = float(first is not None and first <= 5)
            figures["MRR@10"][r.id] = 1.0 / first if first else 0.0
            if r.abstained is not None:
                figures["answer accuracy"][r.id] = float(bool(r.answer_correct))
        elif r.abstained is not None:
            figures["abstain recall"][r.id] = float(r.abstained)
    return {name: values for name, values in figures.items() if values}


class ModeReport(BaseModel):
    mode: str
    metrics: dict[str, Figure]
    hit_at: dict[int, float] = Field(default_factory=dict, description="Hit@k for k = 1..10.")
    intervals: dict[str, tuple[Figure, Figure]] = Field(
        default_factory=dict, description="95% bootstrap interval (over questions) per figure."
    )
    per_question: list[QuestionResult] = Field(default_factory=list)


class EvalReport(BaseModel):
    dataset: str
    settings: dict[str, object]
    created: str
    modes: list[ModeReport]
    notes: list[str] = Field(default_factory=list)
