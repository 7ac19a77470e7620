"""Fitting the answer confidence: a logistic model over the best sentence's features,
answerable questions against unanswerable ones, checked by leave-one-out."""

from __future__ import annotations

import numpy as np

from rag.answer import SentenceScore, confidence
from rag.evaluation.report import markdown
from rag.pipeline import Pipeline
from rag.questions import Question

FEATURES = ("cosine", "coverage", "unseen")


def collect(
    pipeline: Pipeline, questions: list[Question], mode: str | None = None
) -> list[tuple[Question, SentenceScore | None]]:
    """The best sentence (with its features) the pipeline finds for each question."""
    quiet = Pipeline(
        pipeline.settings.model_copy(update={"answers": False}), pipeline.index, pipeline.embedder
    )
    rows = []
    for q in questions:
        hits = quiet.ask(q.question, k=10, mode=mode).hits
        rows.append((q, pipeline.best_sentence(q.question, hits)))
    return rows


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 0.1) -> np.ndarray:
    """Weights (bias first) of a ridge-regularized logistic regression (scikit-learn's,
    the bias not shrunk: C = 1 / l2 on the summed log loss)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0 / l2, solver="lbfgs", max_iter=1000).fit(x, y)
    return np.concatenate([model.intercept_, model.coef_[0]])


def _weights(w: np.ndarray) -> dict[str, float]:
    return {"bias": float(w[0]), **{f: float(v) for f, v in zip(FEATURES, w[1:], strict=True)}}


def _figures(rows, predictions: list[bool], threshold_ok: list[bool]) -> dict[str, float]:
    """Abstention precision/recall and answer accuracy for per-question decisions."""
    answerable = [i for i, (q, _) in enumerate(rows) if q.answerable]
    unanswerable = [i for i, (q, _) in enumerate(rows) if not q.answerable]
    abstained = [i for i, keep in enumerate(predictions) if not keep]
    return {
        "abstain precision": (
            sum(not rows[i][0].answerable for i in abstained) / len(abstained)
            if abstained
            else float("nan")
        ),
        "abstain recall": sum(not predictions[i] for i in unanswerable) / len(unanswerable),
        "wrongly abstained": float(sum(not predictions[i] for i in answerable)),
        "answer accuracy": sum(predictions[i] and threshold_ok[i] for i in answerable)
        / len(answerable),
        "span accuracy (before abstaining)": sum(threshold_ok[i] for i in answerable)
        / len(answerable),
    }


def _correct(q: Question, best: SentenceScore | None) -> bool:
    return (
        best is not None
        and best.hit.doc_id in q.doc_ids
        and any(a.lower() in best.text.lower() for a in q.answers)
    )


def choose_threshold(scored: list[tuple[bool, float]], max_wrong: int = 1) -> float:
    """The confidence threshold that abstains on the most unanswerable questions while
    abstaining on at most `max_wrong` answerable ones. `scored`: (answerable, confidence)."""
    values = sorted({c for _, c in scored})
    cuts = [0.0] + [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)]
    best, best_caught = 0.0, -1
    for cut in cuts:
        wrong = sum(ok and c < cut for ok, c in scored)
        caught = sum(not ok and c < cut for ok, c in scored)
        if wrong <= max_wrong and caught > best_caught:
            best, best_caught = cut, caught
    return round(best, 3)


def calibrate(
    rows: list[tuple[Question, SentenceScore | None]], max_wrong: int = 1
) -> dict[str, object]:
    """Fit on all questions, pick the threshold, and report in-sample figures and
    leave-one-out figures (each question decided by a model fitted without it)."""
    usable = [(q, b) for q, b in rows if b is not None]
    x = np.array([[b.features()[f] for f in FEATURES] for _, b in usable])
    y = np.array([1.0 if q.answerable else 0.0 for q, _ in usable])
    weights = _weights(fit_logistic(x, y))
    threshold = choose_threshold(
        [(q.answerable, confidence(b.features(), weights)) for q, b in usable], max_wrong
    )
    ok = [_correct(q, b) for q, b in usable]
    inside = [confidence(b.features(), weights) >= threshold for _, b in usable]
    held_out = []
    for i in range(len(usable)):  # leave-one-out: the threshold stays, the weights are refit
        keep = np.arange(len(usable)) != i
        w = _weights(fit_logistic(x[keep], y[keep]))
        held_out.append(confidence(usable[i][1].features(), w) >= threshold)
    return {
        "weights": weights,
        "threshold": threshold,
        "in-sample": _figures(usable, inside, ok),
        "leave-one-out": _figures(usable, held_out, ok),
        "confidences": {q.id: round(confidence(b.features(), weights), 3) for q, b in usable},
    }


def calibrate_questions(pipeline: Pipeline, questions: list[Question]) -> dict[str, object]:
    return calibrate(collect(pipeline, questions))


def calibrate_markdown(result: dict[str, object], questions_file: object) -> str:
    """The fitted weights, the threshold and the abstention figures, for eval/abstention.md."""
    weights = result["weights"]
    lines = [
        "# Answer confidence and abstention",
        "",
        f"Fitted by `rag eval calibrate` on `{questions_file}`: a logistic model of the best "
        "span's cosine with the question, its share of the question's content words, and the "
        "share of the question's content words that the corpus never uses, "
        "answerable (1) against unanswerable (0) questions. The threshold abstains on the most "
        "unanswerable questions while abstaining on at most one answerable one.",
        "",
        "Weights: "
        + ", ".join(f"{k} {v:.3f}" for k, v in weights.items())  # type: ignore[union-attr]
        + f"; threshold {result['threshold']}.",
        "",
    ]
    inside, held_out = result["in-sample"], result["leave-one-out"]
    rows = [[n, f"{inside[n]:.3f}", f"{held_out[n]:.3f}"] for n in inside]  # type: ignore[index,union-attr]
    lines.append(markdown(rows, ["figure", "in-sample", "leave-one-out"]))
    lines += ["", "Confidence of each question's best sentence:", ""]
    lines += [f"- {qid}: {c}" for qid, c in result["confidences"].items()]  # type: ignore[union-attr]
    return "\n".join(lines)
