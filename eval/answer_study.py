"""How far the answer-span selector can go on our question set: the ceiling (some span of
the top passages is right) against what the selector picks, with its weights chosen on all
questions (in-sample) and by leave-one-out. Writes eval/answers.md.

    .venv/bin/python eval/answer_study.py
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

from rag.answer import _terms, candidate_spans
from rag.embedding import embed_query
from rag.evaluation.report import markdown
from rag.pipeline import Pipeline
from rag.questions import load_questions
from rag.settings import Settings

PASSAGES = (1, 3, 5)
# (coverage weight, rank penalty, pair bonus): the selection score is
# cosine + coverage weight * coverage - rank penalty * (rank - 1) + pair bonus * (sentences - 1)
GRID = list(itertools.product((0.0, 0.25, 0.5, 0.75), (0.0, 0.05, 0.1), (0.0, 0.05, 0.1)))


def main(out: Path) -> None:
    settings = Settings(answers=False)
    pipeline = Pipeline.open(settings)
    questions = [q for q in load_questions(Path("eval/questions.jsonl")) if q.answerable]
    table = []  # per question: list of (rank, sentences, cosine, coverage, correct)
    for q in questions:
        hits = pipeline.ask(q.question, k=max(PASSAGES)).hits
        spans = candidate_spans(hits, max(PASSAGES))
        xq = embed_query(pipeline.embedder, q.question)
        cosines = pipeline.embedder.embed_batch([s[3] for s in spans], "document") @ xq
        wanted = _terms(q.question)
        rows = []
        for (hit, _, _, text, n), cosine in zip(spans, cosines.tolist(), strict=True):
            coverage = len(wanted & _terms(text)) / len(wanted) if wanted else 0.0
            right = hit.doc_id in q.doc_ids and any(a.lower() in text.lower() for a in q.answers)
            rows.append((hit.rank, n, cosine, coverage, right))
        table.append(rows)

    def picks(weights: tuple[float, float, float], passages: int) -> list[bool]:
        wc, wr, wp = weights
        out = []
        for rows in table:
            rows = [r for r in rows if r[0] <= passages]
            best = max(rows, key=lambda r: r[2] + wc * r[3] - wr * (r[0] - 1) + wp * (r[1] - 1))
            out.append(bool(rows) and best[4])
        return out

    lines = [
        "# Answer spans: ceiling and selector",
        "",
        f"{len(questions)} answerable questions of eval/questions.jsonl, hybrid retrieval. "
        "Every span (one sentence, or two of a paragraph within 320 characters) of the top "
        "passages competes, as in the pipeline. "
        "Reproduce: `.venv/bin/python eval/answer_study.py`.",
        "",
    ]
    results = []
    for passages in PASSAGES:
        ceiling = np.mean([any(r[4] for r in rows if r[0] <= passages) for rows in table])
        by_weights = {w: picks(w, passages) for w in GRID}
        best = max(GRID, key=lambda w: sum(by_weights[w]))
        held_out = []
        for i in range(len(table)):  # weights chosen without question i, applied to it
            w = max(GRID, key=lambda w: sum(by_weights[w]) - by_weights[w][i])
            held_out.append(by_weights[w][i])
        results.append(
            [
                str(passages),
                f"{ceiling:.3f}",
                f"{np.mean(picks((0, 0, 0), passages)):.3f}",
                f"{np.mean(by_weights[best]):.3f} {best}",
                f"{np.mean(held_out):.3f}",
            ]
        )
    head = ["passages read", "ceiling", "cosine alone", "best weights in-sample"]
    lines.append(markdown(results, [*head, "leave-one-out"]))
    lines += [
        "",
        "The pipeline reads 3 passages; all their spans compete, with vectors embedded at "
        "index time (weights 0.25, 0.1, 0.1): 71% on `rag eval` (eval/report.md). The target of "
        "85% is not reached: the right span is among the candidates for 83% (3 passages) to "
        "92% (5 passages) of the questions, but the sentence embedding ranks a span that "
        "restates the question above the one that holds the new fact (a name, a date).",
        "",
        "Tried, in order (answer accuracy, hybrid): sentence cosine alone 0.52; plus word "
        "coverage and answer-type cues (a number for how many / when, a name for who); "
        "headings left out; two-sentence spans 0.65 to 0.67; 8 spans embedded instead of 4: "
        "no change at twice the latency; rank penalty and pair bonus 0.69; every span of the "
        "3 passages competing (vectors from the index) 0.71. No extractive "
        "reader or cross-encoder model is packaged for offline use here.",
    ]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("eval/answers.md"))
