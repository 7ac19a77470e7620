"""Relevance judgments and ranking metrics. The formulas are trec_eval's, through
ir-measures; this module only says what counts as relevant."""

from __future__ import annotations

import math

import ir_measures
from ir_measures import RR, R, Success, nDCG

from rag.models import Hit
from rag.questions import Question

HIT_AT_KS = tuple(range(1, 11))


def answers_question(hit: Hit, question: Question, texts: dict[str, str]) -> bool:
    """A passage answers when it (or a copy listed in `also_in`) is from a gold document
    and contains one of the answers, case aside."""
    answers = [a.lower() for a in question.answers]
    places = [(hit.doc_id, hit.text)] + [
        (p.doc_id, texts[p.doc_id][p.start_char : p.end_char])
        for p in hit.also_in
        if p.doc_id in texts
    ]
    return any(
        doc_id in question.doc_ids and any(a in text.lower() for a in answers)
        for doc_id, text in places
    )


def _run(rankings: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """Scores that keep our order exactly (trec_eval breaks score ties by id)."""
    return {
        qid: {item: float(len(items) - i) for i, item in enumerate(items)} or {"__none__": 0.0}
        for qid, items in rankings.items()
    }


def passage_metrics(relevant_ranks: dict[str, list[int]], depth: int) -> dict[str, float]:
    """Hit@k and MRR@10 over passages, from the ranks at which relevant passages came."""
    qrels = {
        qid: {f"p{r}": 1 for r in ranks} or {"__unretrieved__": 1}
        for qid, ranks in relevant_ranks.items()
    }
    run = _run({qid: [f"p{r}" for r in range(1, depth + 1)] for qid in relevant_ranks})
    measures = [Success @ k for k in HIT_AT_KS] + [RR @ 10]
    values = ir_measures.calc_aggregate(measures, qrels, run)
    result = {f"Hit@{k}": values[Success @ k] for k in HIT_AT_KS}
    result["MRR@10"] = values[RR @ 10]
    return result


def document_metrics(
    gold: dict[str, dict[str, int]], ranked: dict[str, list[str]], measures: dict[str, object]
) -> dict[str, float]:
    """Ranking metrics over documents, with graded relevance where `gold` grades."""
    qrels = {qid: {d: max(0, g) for d, g in docs.items()} for qid, docs in gold.items()}
    values = ir_measures.calc_aggregate(list(measures.values()), qrels, _run(ranked))
    return {name: values.get(measure, 0.0) for name, measure in measures.items()}


def per_query(
    gold: dict[str, dict[str, int]], ranked: dict[str, list[str]], measure: object
) -> list[float]:
    """One measure's value for every judged query (0 for a query with nothing retrieved):
    what a bootstrap interval is drawn from."""
    qrels = {qid: {d: max(0, g) for d, g in docs.items()} for qid, docs in gold.items()}
    got = {m.query_id: m.value for m in ir_measures.iter_calc([measure], qrels, _run(ranked))}
    return [got.get(qid, 0.0) for qid in gold if qid in ranked]


QUESTION_DOC_MEASURES = {"Recall@5 (doc)": R @ 5, "nDCG@10 (doc)": nDCG @ 10}
BEIR_MEASURES = {"nDCG@10": nDCG @ 10, "MRR@10": RR @ 10, "Recall@100": R @ 100}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]
