"""Fitting the answer algorithm (rag.answer) on a question set, and checking it by
cross-validation: which span answers (a conditional logit over every span of the top
passages), how sure to be (a logistic regression over the picked span's features: right or
not), and below which confidence to abstain."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.answer import (
    CONFIDENCE_WEIGHTS,
    SCORE_SCALE_DEPTH,
    SELECTION_WEIGHTS,
    SpanScore,
    confidence,
    typed,
)
from rag.evaluation.report import markdown
from rag.pipeline import Pipeline
from rag.questions import Question

SELECTION = tuple(SELECTION_WEIGHTS)
CONFIDENCE = tuple(name for name in CONFIDENCE_WEIGHTS if name != "bias")
MAX_WRONGLY_ABSTAINED = 0.05  # share of answerable questions the threshold may turn away
SURE = 0.9  # answers at or above this confidence are checked for reliability


@dataclass
class Collected:
    question: Question
    spans: list[SpanScore]
    right: list[bool]  # per span: from a gold document and holding an answer


def collect(pipeline: Pipeline, questions: list[Question]) -> list[Collected]:
    """Every candidate span (with its features) of each question's top passages."""
    quiet = Pipeline(
        pipeline.settings.model_copy(update={"answers": False}), pipeline.index, pipeline.embedder
    )
    rows = []
    for q in questions:
        hits = quiet.ask(q.question, k=SCORE_SCALE_DEPTH).hits
        spans = pipeline.score_spans(q.question, hits)
        answers = [a.lower() for a in q.answers]
        right = [
            q.answerable
            and s.hit.doc_id in q.doc_ids
            and any(a in s.answer_text.lower() for a in answers)
            for s in spans
        ]
        rows.append(Collected(q, spans, right))
    return rows


# Ridge penalty of the span score: 5-fold CV on the dev questions (3 seeds) over 0.1 to 100
# gave answer accuracy 0.717-0.721 for 0.1-1 and 0.717-0.733 for 3-100, abstention rising
# with the penalty (0.38 to 0.51); 30 sits in the flat best region.
L2 = 30.0


def fit_selection(rows: list[Collected], features: tuple[str, ...] = SELECTION) -> dict[str, float]:
    """Weights of the span score, fitted for what it is used for: picking one span per
    question. A conditional logit (softmax over each question's spans, the likelihood of
    the spans that hold an answer), over the answerable questions whose top passages hold
    one at all. scikit-learn has no conditional logit; scipy minimizes it."""
    from scipy.optimize import minimize

    groups = []
    for r in rows:
        competing = typed(r.spans)
        right = np.array([r.right[i] for i in competing])
        if right.any():
            x = np.array([[r.spans[i].features[f] for f in features] for i in competing])
            groups.append((x, right))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = L2 * float(w @ w), 2 * L2 * w
        for x, right in groups:
            z = x @ w
            z = z - z.max()
            p_all = np.exp(z) / np.exp(z).sum()
            p_right = np.where(right, np.exp(z), 0.0)
            total -= float(np.log(p_right.sum()) - np.log(np.exp(z).sum()))
            grad = grad - (p_right / p_right.sum()) @ x + p_all @ x
        return total, grad

    w = minimize(loss, np.zeros(len(features)), jac=True, method="L-BFGS-B").x
    return {f: round(float(v), 3) for f, v in zip(features, w, strict=True)}


def _pick(row: Collected, weights: dict[str, float]) -> tuple[dict[str, float], bool] | None:
    """The picked span's confidence features and whether it is right."""
    if not row.spans:
        return None
    competing = typed(row.spans)
    i = max(competing, key=lambda j: row.spans[j].selection_by(weights))
    return row.spans[i].confidence_features(weights), row.right[i]


def fit_confidence(picked: list[tuple[dict[str, float], bool]]) -> dict[str, float]:
    x = np.array([[f[name] for name in CONFIDENCE] for f, _ in picked])
    y = np.array([ok for _, ok in picked])
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
    weights = {"bias": round(float(model.intercept_[0]), 3)}
    weights.update({n: round(float(w), 3) for n, w in zip(CONFIDENCE, model.coef_[0], strict=True)})
    return weights


def choose_threshold(scored: list[tuple[bool, float]], max_share: float) -> float:
    """The confidence below which to abstain: the most unanswerable questions turned away
    while at most `max_share` of the answerable ones are. `scored`: (answerable, conf)."""
    answerable = sum(ok for ok, _ in scored)
    allowed = int(max_share * answerable)
    values = sorted({c for _, c in scored})
    cuts = [0.0] + [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)]
    best, caught_most = 0.0, -1
    for cut in cuts:
        wrong = sum(ok and c < cut for ok, c in scored)
        caught = sum(not ok and c < cut for ok, c in scored)
        if wrong <= allowed and caught > caught_most:
            best, caught_most = cut, caught
    return round(best, 3)


@dataclass
class Fitted:
    selection: dict[str, float]
    confidence: dict[str, float]
    threshold: float


def fit(rows: list[Collected], features: tuple[str, ...] = SELECTION) -> Fitted:
    selection = fit_selection(rows, features)
    picked = [(r, _pick(r, selection)) for r in rows]
    usable = [(r, p) for r, p in picked if p is not None]
    conf = fit_confidence([p for _, p in usable])
    scored = [(r.question.answerable, confidence(p[0], conf)) for r, p in usable]
    return Fitted(selection, conf, choose_threshold(scored, MAX_WRONGLY_ABSTAINED))


@dataclass
class Decision:
    answerable: bool
    right: bool  # the picked span is right
    confidence: float
    answered: bool


def decide(rows: list[Collected], fitted: Fitted) -> list[Decision]:
    out = []
    for r in rows:
        p = _pick(r, fitted.selection)
        if p is None:
            out.append(Decision(r.question.answerable, False, 0.0, False))
            continue
        c = confidence(p[0], fitted.confidence)
        out.append(Decision(r.question.answerable, p[1], c, c >= fitted.threshold))
    return out


def figures(decisions: list[Decision]) -> dict[str, float]:
    """Answer accuracy, abstention and reliability of per-question decisions."""
    answerable = [d for d in decisions if d.answerable]
    unanswerable = [d for d in decisions if not d.answerable]
    sure = [d for d in decisions if d.answered and d.confidence >= SURE]
    return {
        "span right (before abstaining)": float(np.mean([d.right for d in answerable])),
        "answer accuracy": float(np.mean([d.right and d.answered for d in answerable])),
        "abstain recall": float(np.mean([not d.answered for d in unanswerable]))
        if unanswerable
        else float("nan"),
        "wrongly abstained (share)": float(np.mean([not d.answered for d in answerable])),
        f"answers at confidence >= {SURE}": float(len(sure)),
        "right among them": float(np.mean([d.right for d in sure])) if sure else float("nan"),
    }


BINS = (0.0, 0.4, 0.6, 0.8, 0.9, 1.0001)


def reliability(decisions: list[Decision]) -> list[list[str]]:
    """Per confidence band: how many questions fell there and how many of them the
    picked span got right (unanswerable questions count as not right)."""
    table = []
    for lo, hi in zip(BINS, BINS[1:], strict=False):
        band = [d for d in decisions if lo <= d.confidence < hi]
        right = sum(d.right for d in band)
        share = f"{right / len(band):.0%}" if band else "-"
        table.append([f"{lo:.1f}-{min(hi, 1.0):.1f}", str(len(band)), f"{right} ({share})"])
    return table


def cross_validate(
    rows: list[Collected], folds: int, seed: int = 0, features: tuple[str, ...] = SELECTION
) -> list[Decision]:
    """Out-of-fold decisions: each question decided by models and a threshold fitted on
    the other folds (stratified on answerable)."""
    from sklearn.model_selection import StratifiedKFold

    from rag.errors import ConfigError

    y = np.array([r.question.answerable for r in rows])
    smaller = int(min(y.sum(), len(y) - y.sum()))
    if folds > smaller:
        raise ConfigError(
            f"{folds} folds need at least {folds} answerable and {folds} unanswerable "
            f"questions; the set has {smaller} of one kind: use --folds {max(2, smaller)}"
        )
    decided: list[Decision | None] = [None] * len(rows)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(rows)), y):
        fitted = fit([rows[i] for i in train], features)
        for i, d in zip(test, decide([rows[i] for i in test], fitted), strict=True):
            decided[i] = d
    return [d for d in decided if d is not None]


def calibrate_questions(
    pipeline: Pipeline, questions: list[Question], folds: int = 5
) -> dict[str, object]:
    rows = collect(pipeline, questions)
    fitted = fit(rows)
    current = Fitted(
        dict(SELECTION_WEIGHTS), dict(CONFIDENCE_WEIGHTS), pipeline.settings.answer_threshold
    )
    held_out = cross_validate(rows, folds)
    return {
        "fitted": fitted,
        "in-sample": figures(decide(rows, fitted)),
        f"{folds}-fold": figures(held_out),
        "in use": figures(decide(rows, current)),
        "questions": len(rows),
        "reliability": reliability(held_out),
    }


def calibrate_markdown(result: dict[str, object], questions_file: object, folds: int) -> str:
    """The fitted weights, the threshold and the figures, for eval/abstention.md."""
    fitted: Fitted = result["fitted"]  # type: ignore[assignment]
    lines = [
        "# Answer selection, confidence and abstention",
        "",
        f"Fitted by `rag eval calibrate --folds {folds}` on `{questions_file}` "
        f"({result['questions']} questions). The span score is a conditional logit of "
        "'this span holds an answer' over every span of the answerable questions' top "
        "passages; the confidence is a logistic regression of 'the picked span is right' "
        "(unanswerable questions count as not right); the threshold abstains on the most "
        f"unanswerable questions while abstaining on at most {MAX_WRONGLY_ABSTAINED:.0%} of "
        "the answerable ones. The cross-validated column decides each question with models "
        "and a threshold fitted on the other folds; in-sample figures are not evidence.",
        "",
        "Selection weights: " + ", ".join(f"{k} {v}" for k, v in fitted.selection.items()),
        "",
        "Confidence weights: " + ", ".join(f"{k} {v}" for k, v in fitted.confidence.items()),
        "",
        f"Threshold: {fitted.threshold}.",
        "",
    ]
    columns = ["in use", f"{folds}-fold", "in-sample"]
    names = list(result["in use"])  # type: ignore[arg-type]
    table = [[n, *(f"{result[c][n]:.3f}" for c in columns)] for n in names]  # type: ignore[index]
    lines.append(markdown(table, ["figure", "constants in use", *columns[1:]]))
    lines += [
        "",
        f"Reliability, {folds}-fold (each question's confidence from models fitted without it):",
        "",
        markdown(result["reliability"], ["confidence", "questions", "picked span right"]),  # type: ignore[arg-type]
    ]
    return "\n".join(lines)
