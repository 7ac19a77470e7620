"""Documents, not only passages: on Cranfield (1,400 short abstracts, 225 queries), ranking
documents by their passages (best passage, or the best plus a share of the next) against
indexing each document whole, with the fusion chosen on our dev questions. Each method's
parameter is chosen by 5-fold cross-validation over the queries (repeated 4 times) and the
held-out folds are reported; BEIR has no separate dev split for Cranfield.

    .venv/bin/python eval/cranfield_study.py ../shared/bench/cranfield > eval/cranfield_study.md
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import ir_measures
import numpy as np
from ir_measures import nDCG
from sklearn.model_selection import RepeatedKFold

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.build import build_index  # noqa: E402
from rag.embedding import embedder_for  # noqa: E402
from rag.evaluation.harness import (  # noqa: E402
    _read_jsonl,
    load_beir_qrels,
    materialize_beir_corpus,
)
from rag.evaluation.stats import bootstrap_interval  # noqa: E402
from rag.lexical import tokenize  # noqa: E402
from rag.search import DENSE_WEIGHT, SENTENCE_WEIGHT  # noqa: E402
from rag.settings import load_settings  # noqa: E402
from rag.store import load_index  # noqa: E402

POOL = 100


def zscore(scores: np.ndarray) -> np.ndarray:
    top = np.sort(scores)[::-1][:POOL]
    return (scores - top.mean()) / (top.std() or 1.0)


def signals(index, xq: np.ndarray, bm25: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    passage = np.asarray(index.vectors, dtype=np.float32) @ xq
    best = np.array(
        [
            (np.asarray(index.span_vectors[s], dtype=np.float32) @ xq).max() if len(s) else p
            for s, p in zip(SPANS[id(index)], passage, strict=True)
        ]
    )
    return passage, best


SPANS: dict[int, list[np.ndarray]] = {}


FEEDBACK_PASSAGES = 3
FEEDBACK_TERMS = 20


def rm3(index, tokens: list[list[str]], text: str, bm25: np.ndarray, weight: float) -> np.ndarray:
    """RM3: BM25 mixed with the scores of the terms that weigh most in the top passages."""
    if weight == 0 or bm25.max() <= 0:
        return bm25
    lexical = index.lexical
    model: dict[str, float] = {}
    for r in np.argsort(-bm25)[:FEEDBACK_PASSAGES]:
        own = tokens[r]
        for t in set(own):
            model[t] = model.get(t, 0.0) + float(bm25[r]) * own.count(t) / len(own)
    asked = set(tokenize([text], lexical.stem, lexical.stopwords)[0])
    vocab = lexical.retriever.vocab_dict
    extra = sorted((t for t in model if t not in asked and t in vocab), key=lambda t: -model[t])
    extra = extra[:FEEDBACK_TERMS]
    total = sum(model[t] for t in extra) or 1.0
    expanded = np.zeros_like(bm25)
    for t in extra:
        expanded += model[t] / total * np.asarray(lexical.retriever.get_scores([t]), np.float32)
    return (1 - weight) * bm25 / bm25.max() + weight * expanded / (expanded.max() or 1.0)


def rocchio(vectors: np.ndarray, xq: np.ndarray, dense: np.ndarray, beta: float) -> np.ndarray:
    """The question's vector moved toward the mean of its top passages', then cosines."""
    if beta == 0:
        return dense
    moved = xq + beta * vectors[np.argsort(-dense)[:FEEDBACK_PASSAGES]].mean(axis=0)
    return vectors @ (moved / np.linalg.norm(moved))


FEEDBACK = ((0.0, 0.0), (0.4, 0.0), (0.0, 0.5), (0.4, 0.5))  # (RM3 weight, Rocchio beta)


def prepare(index, queries: dict[str, str], embedder) -> dict[str, dict]:
    """Per query and per feedback setting: (passage cosine, best sentence, BM25)."""
    SPANS[id(index)] = [index.spans_of(r) for r in range(len(index.chunks))]
    tokens = tokenize(
        [c.embed_text for c in index.chunks], index.lexical.stem, index.lexical.stopwords
    )
    vectors = np.asarray(index.vectors, dtype=np.float32)
    xqs = embedder.embed_batch(list(queries.values()), "query")
    out = {}
    for (qid, text), xq in zip(queries.items(), xqs, strict=True):
        bm25 = index.lexical.scores(text)
        passage, best = signals(index, xq, bm25)
        out[qid] = {
            (w, beta): (
                rocchio(vectors, xq, passage, beta),
                rocchio(vectors, xq, best, beta) if beta else best,
                rm3(index, tokens, text, bm25, w),
            )
            for w, beta in FEEDBACK
        }
    return out


def doc_of(index) -> np.ndarray:
    return np.array([c.doc_id.removesuffix(".txt") for c in index.chunks])


def ranking(scores: np.ndarray, docs: np.ndarray, second: float) -> list[str]:
    """Documents by their best passage's score plus `second` times their next best."""
    order = np.argsort(-scores, kind="stable")
    best: dict[str, list[float]] = {}
    for r in order[:1000]:
        got = best.setdefault(docs[r], [])
        if len(got) < 2:
            got.append(float(scores[r]))
    value = {d: s[0] + second * (s[1] if len(s) > 1 else s[0] - 1.0) for d, s in best.items()}
    return sorted(value, key=lambda d: -value[d])[:100]


def rank_of(scores: np.ndarray) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def fused(signals_: tuple, alpha: float, lam: float, mode: str) -> np.ndarray:
    """alpha: the dense weight (z-score), or RRF's constant k in mode "rrf"."""
    passage, best, bm25 = signals_
    dense = (1 - lam) * passage + lam * best
    if mode == "dense":
        return dense
    if mode == "bm25":
        return bm25
    if mode == "rrf":
        rd, rb = rank_of(dense), rank_of(bm25)
        return np.where(rd <= POOL, 1 / (alpha + rd), 0) + np.where(rb <= POOL, 1 / (alpha + rb), 0)
    return alpha * zscore(dense) + (1 - alpha) * zscore(bm25)


def feedback_of(p: tuple) -> tuple[float, float]:
    """The (RM3 weight, Rocchio beta) of a parameter tuple; none for the short ones."""
    return (p[2], p[3]) if len(p) == 5 else (0.0, 0.0)


def per_query_ndcg(qrels, rankings: dict[str, list[str]]) -> dict[str, float]:
    run = {q: {d: float(len(ds) - i) for i, d in enumerate(ds)} for q, ds in rankings.items()}
    return {m.query_id: m.value for m in ir_measures.iter_calc([nDCG @ 10], qrels, run)}


def evaluate(
    data: dict[str, tuple], docs: np.ndarray, qrels, method: Callable, grid: list
) -> tuple[float, float, object, np.ndarray]:
    qids = sorted(data)
    table = {}
    for p in grid:
        ndcg = per_query_ndcg(qrels, {q: ranking(method(data[q], p), docs, p[-1]) for q in qids})
        table[p] = np.array([ndcg.get(q, 0.0) for q in qids])
    held = []
    for train, test in RepeatedKFold(n_splits=5, n_repeats=4, random_state=0).split(qids):
        best = max(grid, key=lambda p: table[p][train].mean())
        held.append(table[best][test].mean())
    chosen = max(grid, key=lambda p: table[p].mean())
    return float(np.mean(held)), float(table[chosen].mean()), chosen, table[chosen]


def main(dataset: Path) -> None:
    settings = load_settings()
    embedder = embedder_for(settings)
    queries = {str(q["_id"]): q["text"] for q in _read_jsonl(dataset / "queries.jsonl")}
    qrels = load_beir_qrels(dataset / "qrels" / "test.tsv")
    qrels = {q: {d: max(0, g) for d, g in docs.items()} for q, docs in qrels.items()}
    queries = {q: t for q, t in queries.items() if q in qrels}
    home = materialize_beir_corpus(dataset, settings.cache_dir)
    layouts = {"passages (600/300)": (600, 300), "whole documents": (20_000, 0)}
    seconds = (0.0, 0.1, 0.25, 0.5)
    rows = []
    for name, (size, overlap) in layouts.items():
        built = settings.model_copy(
            update={
                "corpus_dir": home / "corpus",
                "index_dir": home / f"index-{size}-{overlap}",
                "chunk_size": size,
                "chunk_overlap": overlap,
                "answers": True,  # the sentences' vectors are retrieval evidence
            }
        )
        build_index(built, embedder=embedder)
        index = load_index(built.index_dir)
        data = prepare(index, queries, embedder)
        docs = doc_of(index)
        grids = {
            "bm25": [(0.0, 0.0, s) for s in seconds],
            "dense: passage": [(0.0, 0.0, s) for s in seconds],
            "dense: best sentence": [(0.0, 1.0, s) for s in seconds],
            "hybrid z-score (dev constants)": [(DENSE_WEIGHT, SENTENCE_WEIGHT, s) for s in seconds],
            "rrf (k, lambda chosen here)": [
                (k, lam, s) for k in (10, 60) for lam in (0.0, 0.5) for s in seconds
            ],
            "hybrid z-score (alpha, lambda chosen here)": [
                (a, lam, s)
                for a in (0.3, 0.4, 0.5, 0.6, 0.7)
                for lam in (0.0, 0.25, 0.5, 0.75)
                for s in seconds
            ],
            "bm25 + RM3 (weight)": [(0.0, 0.0, w, 0.0, s) for w in (0.0, 0.4) for s in seconds],
            "dense + Rocchio (beta)": [(0.0, 0.0, 0.0, b, s) for b in (0.0, 0.5) for s in seconds],
            "hybrid z-score + RM3 + Rocchio (alpha, lambda, weight, beta)": [
                (a, lam, w, b, s)
                for a in (0.5, 0.6, 0.7)
                for lam in (0.0, 0.5)
                for w, b in FEEDBACK
                for s in (0.0, 0.25)
            ],
        }
        for method_name, grid in grids.items():
            mode = method_name.split(":")[0].split(" ")[0]
            cv, whole, chosen, per_q = evaluate(
                data,
                docs,
                qrels,
                lambda sig, p, m=mode: fused(sig[feedback_of(p)], p[0], p[1], m),
                grid,
            )
            lo, hi = bootstrap_interval(per_q)
            rows.append(
                f"| {name} | {method_name} | {chosen} | {cv:.3f} "
                f"| {whole:.3f} [{lo:.3f}, {hi:.3f}] |"
            )
            print(rows[-1], file=sys.stderr)
    print("# Cranfield: passages or whole documents\n")
    print(" ".join(__doc__.split("\n\n")[0].split()) + "\n")
    print(
        f"{len(queries)} queries, nDCG@10. Parameters: (alpha or RRF's k, lambda, [RM3 weight, "
        "Rocchio beta,] share of the second passage in a document's score). Feedback uses the "
        f"top {FEEDBACK_PASSAGES} passages and {FEEDBACK_TERMS} expansion terms. Produced by "
        "`python eval/cranfield_study.py ../shared/bench/cranfield`.\n"
    )
    print(
        "| index | method | parameters (chosen on all queries) | nDCG@10, 5-fold CV "
        "| nDCG@10, in-sample [95% CI] |"
    )
    print("|---|---|---|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
