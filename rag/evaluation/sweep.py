"""Comparing chunk settings on a question set: one index per setting, same harness."""

from __future__ import annotations

import hashlib
import math

import numpy as np

from rag.build import build_index
from rag.embedding import Embedder
from rag.evaluation.harness import evaluate_questions
from rag.evaluation.report import markdown
from rag.evaluation.results import per_question_figures
from rag.evaluation.stats import cross_validated_choice
from rag.options import MODES
from rag.pipeline import Pipeline
from rag.questions import Question
from rag.settings import Settings

SWEEP_COLUMNS = ("Hit@1", "Hit@5", "MRR@10", "nDCG@10 (doc)", "answer accuracy", "abstain recall")


def run_sweep(
    settings: Settings,
    questions: list[Question],
    embedder: Embedder,
    sizes: list[int],
    overlaps: list[int],
    depth: int = 10,
) -> list[dict[str, object]]:
    """A row per (size, overlap, mode) with the passage count and the ranking metrics.
    Each setting gets its own cached index; vectors of unchanged passages are reused."""
    corpus_key = hashlib.sha256(str(settings.corpus_dir.resolve()).encode()).hexdigest()[:12]
    rows: list[dict[str, object]] = []
    for size in sizes:
        for overlap in (o for o in overlaps if o < size):
            variant = settings.model_copy(
                update={
                    "chunk_size": size,
                    "chunk_overlap": overlap,
                    "index_dir": settings.cache_dir / "sweep" / f"{corpus_key}-{size}-{overlap}",
                }
            )
            build_index(variant, embedder=embedder)
            pipeline = Pipeline.open(variant, embedder=embedder)
            report = evaluate_questions(pipeline, questions, MODES, depth)
            for mode in report.modes:
                rows.append(
                    {
                        "chunk_size": size,
                        "chunk_overlap": overlap,
                        "mode": mode.mode,
                        "passages": len(pipeline.index.chunks),
                        **{c: round(mode.metrics.get(c, math.nan), 4) for c in SWEEP_COLUMNS},
                        "per_question_mrr": per_question_figures(mode.per_question)["MRR@10"],
                    }
                )
    return rows


def sweep_choice(rows: list[dict[str, object]]) -> list[str]:
    """Per mode, the chunk setting chosen by 5-fold cross-validation on MRR@10, and what
    choosing that way scores on held-out questions."""
    lines = []
    for mode in dict.fromkeys(str(r["mode"]) for r in rows):
        table = {}
        for r in (r for r in rows if r["mode"] == mode):
            per_question: dict[str, float] = r["per_question_mrr"]  # type: ignore[assignment]
            table[(r["chunk_size"], r["chunk_overlap"])] = np.array(
                [per_question[q] for q in sorted(per_question)]
            )
        held_out, (size, overlap) = cross_validated_choice(table)
        lines.append(
            f"{mode}: {size}/{overlap} has the best MRR@10 on all questions; choosing by "
            f"5-fold cross-validation scores MRR@10 {held_out:.3f} on the held-out folds."
        )
    return lines


def sweep_markdown(rows: list[dict[str, object]]) -> str:
    head = ["chunk_size", "chunk_overlap", "mode", "passages", *SWEEP_COLUMNS]
    return markdown([[str(row[h]) for h in head] for row in rows], head)
