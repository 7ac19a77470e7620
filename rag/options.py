"""What one question may ask for, declared once: the retrieval modes and fusions, and the
per-call search options that the API, the CLI and the harness pass with each question
(settings hold the defaults; build parameters live in the index's manifest)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

Mode = Literal["dense", "bm25", "hybrid"]
# "score" is the name min-max fusion had before 0.3.0, still accepted.
Fusion = Literal["zscore", "minmax", "rrf", "score"]
MODES: tuple[str, ...] = get_args(Mode)
FUSIONS: tuple[str, ...] = get_args(Fusion)


class SearchOptions(BaseModel):
    """Per-call options; None means the default of the settings (RAG_TOP_K, RAG_MODE...)."""

    model_config = ConfigDict(extra="forbid")

    k: int | None = Field(None, ge=1, description="Passages to return; RAG_TOP_K when omitted.")
    doc_ids: list[str] | None = Field(
        None,
        max_length=1000,
        description="Search only these documents; an empty list matches none (no hits).",
    )
    min_score: float | None = Field(
        None,
        allow_inf_nan=False,
        description="Drop passages scoring below this (the score of the mode).",
    )
    mode: Mode | None = Field(None, description="Retrieval mode; RAG_MODE when omitted.")
    explain: bool = Field(False, description="Give each hit its dense and BM25 ranks.")
    max_per_doc: int | None = Field(
        None, ge=1, le=50, description="At most this many passages from one document."
    )

    @field_validator("k", "max_per_doc", mode="before")
    @classmethod
    def _not_a_flag(cls, value: object) -> object:
        """A JSON true is not a count (lax validation would read it as 1); "5" from a form
        field still is."""
        if isinstance(value, bool):
            raise ValueError("Input should be a whole number, not true or false")
        return value
