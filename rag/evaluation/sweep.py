"""Comparing chunk settings on a question set: one index per setting, same harness."""

from __future__ import annotations

import hashlib

from rag.build import build_index
from rag.embedding import Embedder
from rag.evaluation.harness import evaluate_questions
from rag.evaluation.report import markdown
from rag.options import MODES
from rag.pipeline import Pipeline
from rag.questions import Question
from rag.settings import Settings

SWEEP_COLUMNS = ("Hit@1", "Hit@5", "MRR@10", "Recall@5 (doc)", "nDCG@10 (doc)")


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
                        **{c: round(mode.metrics[c], 4) for c in SWEEP_COLUMNS},
                    }
                )
    return rows


def sweep_markdown(rows: list[dict[str, object]]) -> str:
    head = ["chunk_size", "chunk_overlap", "mode", "passages", *SWEEP_COLUMNS]
    return markdown([[str(row[h]) for h in head] for row in rows], head)
