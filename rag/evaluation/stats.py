"""Uncertainty of a figure measured on a few dozen questions: a bootstrap interval over
questions, and how many questions a change moved (one question of 60 is 0.017)."""

from __future__ import annotations

import numpy as np

RESAMPLES = 10_000


def bootstrap_interval(
    values: np.ndarray | list[float], confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-question `values` (scipy's; the
    percentile method because BCa is undefined when every question scores the same)."""
    from scipy.stats import bootstrap

    data = np.asarray(values, dtype=float)
    if len(data) == 0:
        return (float("nan"), float("nan"))
    if np.all(data == data[0]):
        return (float(data[0]), float(data[0]))
    result = bootstrap(
        (data,),
        np.mean,
        confidence_level=confidence,
        n_resamples=RESAMPLES,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def moved_lines(before, after) -> list[str]:
    """Per mode and figure, how many questions went up and down between two reports
    (rag.evaluation.results.EvalReport) of the same question set."""
    from rag.evaluation.results import per_question_figures

    old = {m.mode: per_question_figures(m.per_question) for m in before.modes}
    lines = []
    for mode in after.modes:
        if mode.mode not in old:
            continue
        now = per_question_figures(mode.per_question)
        parts = []
        for name, values in now.items():
            up, down = moved(old[mode.mode].get(name, {}), values)
            parts.append(f"{name} +{up}/-{down}")
        lines.append(f"{mode.mode}: questions moved: " + ", ".join(parts))
    return lines


def moved(before: dict[str, float], after: dict[str, float]) -> tuple[int, int]:
    """(questions that went up, questions that went down) between two per-question figures."""
    common = before.keys() & after.keys()
    return (
        sum(after[q] > before[q] for q in common),
        sum(after[q] < before[q] for q in common),
    )


def cross_validated_choice(
    table: dict[object, np.ndarray], folds: int = 5, repeats: int = 4, seed: int = 0
) -> tuple[float, object]:
    """Choosing one setting among `table` (setting -> a figure per question, same question
    order) by repeated K-fold: the setting best on the training folds is scored on the
    held-out fold. Returns that held-out mean (what choosing this way is worth on unseen
    questions) and the setting best on all questions (the one to use)."""
    from sklearn.model_selection import RepeatedKFold

    keys = list(table)
    n = len(table[keys[0]])
    held = []
    splitter = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    for train, test in splitter.split(np.arange(n)):
        best = max(keys, key=lambda k: table[k][train].mean())
        held.append(table[best][test].mean())
    return float(np.mean(held)), max(keys, key=lambda k: table[k].mean())
