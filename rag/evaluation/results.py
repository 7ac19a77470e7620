"""What an evaluation produces: every number and every per-question outcome."""

from __future__ import annotations

from pydantic import BaseModel, Field


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


class ModeReport(BaseModel):
    mode: str
    metrics: dict[str, float]
    hit_at: dict[int, float] = Field(default_factory=dict, description="Hit@k for k = 1..10.")
    per_question: list[QuestionResult] = Field(default_factory=list)


class EvalReport(BaseModel):
    dataset: str
    settings: dict[str, object]
    created: str
    modes: list[ModeReport]
    notes: list[str] = Field(default_factory=list)
