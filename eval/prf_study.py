"""Pseudo-relevance feedback (RM3) on the keyword ranking: does expanding a question with the
words of its first BM25 results bridge wording the documents do not share ("stopped
supporting Python 3.7" against "Drop support for Python 3.7")? Measured on Cranfield
(documents judged relevant) and on question sets whose passages must hold the answer, in
bm25 mode, over a grid of feedback passages, expansion terms and the original query's
weight (lambda; 1.0 is plain BM25). A study, not a feature: nothing here is used by rag.

    .venv/bin/python eval/prf_study.py ../shared/bench/cranfield <seed build> <realdocs build> \
        > eval/prf_study.md

A build is an index's build folder (`cat index/CURRENT`); its chunks.jsonl is what BM25
indexes here, as `rag` does (rag.chunking.retrieval_text).
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path

import bm25s
import ir_measures
import numpy as np
from ir_measures import RR, R, nDCG

from rag.chunking import retrieval_text
from rag.lexical import tokenize

GRID = [(0, 0, 1.0)] + [(d, t, w) for d in (5, 10) for t in (10, 20) for w in (0.5, 0.7, 0.85)]
REPO = Path(__file__).resolve().parent.parent
REALDOCS_SETS = [
    REPO.parent / "shared" / "corpora" / "realdocs_questions.jsonl",
    REPO / "eval" / "realdocs_questions.jsonl",
    REPO / "eval" / "release_notes_heldout.jsonl",
]
SEED_SETS = [REPO / "eval" / "questions.jsonl", REPO / "eval" / "questions_test.jsonl"]


FINDINGS = """Feedback helps where relevance is topical: Cranfield's nDCG@10 rises from 0.375 to
0.39-0.42 and Recall@100 from 0.738 to 0.77-0.80 at every setting. It does not help where a
passage must hold the answer: the seed questions move within a question or two either way
(dev MRR@10 0.782-0.802 against 0.796); on the real documents no setting raises Hit@5 (the
folder's 20: 0.875 -> 0.812-0.875; ours: 0.958 -> 0.833-0.917), MRR@10 moves 0.747-0.802
against 0.793 on the folder's and falls on ours (0.830 -> 0.768-0.819) and on the release
notes held out (0.562 -> 0.446-0.521): the words of the first results pull the question
toward the look-alike passages that outranked the answer in the first place. Not adopted."""


class Keywords:
    """BM25 over tokenized texts, scored term by term so that terms can carry weights."""

    def __init__(self, texts: list[str]) -> None:
        self.tokens = tokenize(texts, stem=True, stopwords=True)
        self.bm25 = bm25s.BM25()
        self.bm25.index(self.tokens, show_progress=False)
        self.n = len(texts)

    def scores(self, weights: dict[str, float]) -> np.ndarray:
        out = np.zeros(self.n, dtype=np.float32)
        for term, weight in weights.items():
            if term in self.bm25.vocab_dict:
                out += weight * np.asarray(self.bm25.get_scores([term]), dtype=np.float32)
        return out

    def rm3(self, question: str, docs: int, terms: int, keep: float) -> np.ndarray:
        """RM3: the question's terms (weight `keep`) mixed with the `terms` likeliest terms
        of its first `docs` results, each weighted by its result's softmaxed score."""
        asked = tokenize([question], stem=True, stopwords=True)[0]
        first = self.scores(dict.fromkeys(asked, 1.0))
        if not docs or keep >= 1.0 or not asked:
            return first
        top = [i for i in np.argsort(-first)[:docs] if first[i] > 0]
        if not top:
            return first
        weight = np.exp(first[top] - first[top].max())
        weight /= weight.sum()
        model: Counter[str] = Counter()
        for i, w in zip(top, weight, strict=True):
            counts = Counter(self.tokens[i])
            length = sum(counts.values())
            for term, k in counts.items():
                model[term] += w * k / length
        expansion = dict(model.most_common(terms))
        total = sum(expansion.values())
        query = {t: keep / len(asked) for t in asked}
        for term, value in expansion.items():
            query[term] = query.get(term, 0.0) + (1 - keep) * value / total
        return self.scores(query)


def cranfield(folder: Path) -> list[str]:
    docs = [json.loads(line) for line in open(folder / "corpus.jsonl", encoding="utf-8")]
    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels" / "test.tsv", encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if row[0] != "query-id":
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries = [json.loads(line) for line in open(folder / "queries.jsonl", encoding="utf-8")]
    queries = [q for q in queries if q["_id"] in qrels]
    keywords = Keywords([f"{d.get('title', '')}\n{d['text']}" for d in docs])
    lines = ["| feedback passages | terms | lambda | nDCG@10 | MRR@10 | Recall@100 |",
             "|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for d, t, w in GRID:
        run = {}
        for q in queries:
            s = keywords.rm3(q["text"], d, t, w)
            run[q["_id"]] = {docs[i]["_id"]: float(s[i]) for i in np.argsort(-s)[:100]}
        m = ir_measures.calc_aggregate([nDCG @ 10, RR @ 10, R @ 100], qrels, run)
        lines.append(f"| {d} | {t} | {w} | {m[nDCG @ 10]:.3f} | {m[RR @ 10]:.3f} | "
                     f"{m[R @ 100]:.3f} |")  # fmt: skip
    return lines


def questions(build: Path, sets: list[Path]) -> list[str]:
    chunks = [json.loads(line) for line in open(build / "chunks.jsonl", encoding="utf-8")]
    keywords = Keywords([retrieval_text(c["doc_id"], c["section"], c["text"]) for c in chunks])
    lines = ["| set | feedback passages | terms | lambda | Hit@1 | Hit@5 | MRR@10 |",
             "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for path in sets:
        qs = [json.loads(line) for line in open(path, encoding="utf-8")]
        qs = [q for q in qs if q.get("answerable", True) and q.get("answers")]
        for d, t, w in GRID:
            ranks = []
            for q in qs:
                top = np.argsort(-keywords.rm3(q["question"], d, t, w), kind="stable")[:10]
                ranks.append(next((r for r, i in enumerate(top, 1)
                                   if chunks[i]["doc_id"] in q["doc_ids"]
                                   and any(a.lower() in chunks[i]["text"].lower()
                                           for a in q["answers"])), None))  # fmt: skip
            n = len(qs)
            hit1 = sum(r == 1 for r in ranks) / n
            hit5 = sum(r is not None and r <= 5 for r in ranks) / n
            mrr = sum(1 / r for r in ranks if r) / n
            name = f"{path.parent.name}/{path.name}"
            lines.append(f"| {name} | {d} | {t} | {w} | {hit1:.3f} | {hit5:.3f} | {mrr:.3f} |")
    return lines


def main() -> None:
    cran, seed_build, real_build = (Path(a) for a in sys.argv[1:4])
    out = ["# Pseudo-relevance feedback (RM3) on BM25", "", (__doc__ or "").split("\n\n")[0], "",
           "## Cranfield (225 queries, documents)", "", *cranfield(cran), "",
           "## Seed questions (passages holding the answer; dev, then held-out test)", "",
           *questions(seed_build, SEED_SETS), "",
           "## Real documents (the folder's 20, ours, release notes held out)", "",
           *questions(real_build, REALDOCS_SETS), "", "## Reading", "", FINDINGS]  # fmt: skip
    print("\n".join(out))


if __name__ == "__main__":
    main()
