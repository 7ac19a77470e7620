"""How the answer span weighs the passage it comes from. The span score (rag.answer) used the
passage's rank: the second passage's spans lost a fixed amount against the first's, however
close the two passages were in retrieval score, so a right answer one place down was never
picked while the first passage had any span of the asked-for type. `drop` measures instead
how far the passage's score falls below the first's, on the scale of the search's first ten
scores. Both feature sets are fitted the way `rag eval calibrate` fits (conditional logit,
logistic confidence, threshold) on the seed dev questions, as shipped, and on the dev
questions of both corpora pooled; both are compared, question by question, on sets that
chose nothing. A study: it prints the constants and the figures and changes nothing.

    .venv/bin/python eval/answer_fit_study.py <seed index dir> <realdocs index dir> \\
        > eval/answer_fit_study.md
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from scipy.stats import binomtest

from rag.answer import SCORE_SCALE_DEPTH, SELECTION_WEIGHTS
from rag.cli.common import as_built, ensure
from rag.embedding import embedder_for
from rag.evaluation.calibration import Collected, Decision, collect, cross_validate, decide, fit
from rag.evaluation.report import markdown
from rag.pipeline import Pipeline
from rag.questions import load_questions
from rag.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SEEDS = REPO / "seeds"
REALDOCS = SHARED / "corpora" / "realdocs"
# (name, corpus, question file, role): dev sets may be fitted on; test sets never are.
SETS = [
    ("seeds dev", SEEDS, REPO / "eval" / "questions.jsonl", "dev"),
    ("realdocs folder", REALDOCS, SHARED / "corpora" / "realdocs_questions.jsonl", "dev"),
    ("realdocs ours", REALDOCS, REPO / "eval" / "realdocs_questions.jsonl", "dev"),
    ("release notes", REALDOCS, REPO / "eval" / "release_notes_questions.jsonl", "dev"),
    ("seeds test", SEEDS, REPO / "eval" / "questions_test.jsonl", "test"),
    ("realdocs held out", REALDOCS, REPO / "eval" / "realdocs_heldout.jsonl", "test"),
    ("realdocs held out 2", REALDOCS, REPO / "eval" / "realdocs_heldout2.jsonl", "test"),
    ("release notes held out", REALDOCS, REPO / "eval" / "release_notes_heldout.jsonl", "test"),
    ("tables held out", REALDOCS, REPO / "eval" / "tables_heldout.jsonl", "test"),
]
FEATURES = {
    "rank": tuple(f for f in SELECTION_WEIGHTS if f != "drop") + ("rank",),
    "drop": tuple(SELECTION_WEIGHTS),
}
FOLDS, SEEDS_CV = 5, (0, 1, 2)
FINDINGS = """Cross-validated on the dev questions the two features are level (seed dev: 62-64 of
86 answered right with rank, 63-64 with drop; pooled: 99-100 and 101 of 134). On the five
sets that chose nothing, drop answers 8 questions right that rank did not and 1 the other
way (seed test +5, real documents held out +1, release notes held out +2, the second real
documents held-out set -1, tables 0; sign test p=0.04), fitted on either training set,
which moves no answer on them. At 0.7.0 the first real-documents set read +2; 0.7.2's PDF
hyphen fix moved the passages of one of those two (H-pdf-04), whose answer no longer
matches its gold string under either feature. The cost: one unanswerable question fewer abstained on
(real documents held out 1 of 6 -> 0; the others equal). Adopted: `drop` replaces `rank`,
with the constants `rag eval calibrate` fitted on the seed dev questions at 0.7.0
(eval/abstention.md; fitted again now they move by at most 0.003, threshold 0.435). The
idea came from dev failures (A-html-03, A-pdf-02, R-html-02: the answer in the second
passage, scored close to the first). The first real-documents and the release-notes
held-out sets had been run once before the change and their failures read; the first
showed the same pattern, so neither is wholly blind to it. The seed test set's questions
were not looked at, and the second real-documents set was written after the change and
measured once."""


@dataclass
class QuestionSet:
    name: str
    role: str
    rows: list[Collected]


def collect_all(index_dirs: dict[Path, Path]) -> list[QuestionSet]:
    embedder = None
    pipelines: dict[Path, Pipeline] = {}
    out = []
    for name, corpus, questions, role in SETS:
        if corpus not in pipelines:
            settings = as_built(load_settings(corpus_dir=corpus, index_dir=index_dirs[corpus]))
            embedder = embedder or embedder_for(settings)
            ensure(settings, embedder)
            pipelines[corpus] = Pipeline.open(settings, embedder=embedder)
        out.append(QuestionSet(name, role, collect(pipelines[corpus], load_questions(questions))))
    return out


def right(decisions: list[Decision]) -> list[bool]:
    """Per answerable question: answered, with a right span."""
    return [d.right and d.answered for d in decisions if d.answerable]


def figures_of(decisions: list[Decision]) -> list[str]:
    ok, unanswerable = right(decisions), [d for d in decisions if not d.answerable]
    caught = sum(not d.answered for d in unanswerable)
    wrongly = sum(not d.answered for d in decisions if d.answerable)
    return [
        f"{sum(ok)}/{len(ok)} ({sum(ok) / len(ok):.0%})",
        f"{caught}/{len(unanswerable)}" if unanswerable else "-",
        str(wrongly),
    ]


def moved(before: list[Decision], after: list[Decision]) -> str:
    pairs = list(zip(right(before), right(after), strict=True))
    up, down = sum(a and not b for b, a in pairs), sum(b and not a for b, a in pairs)
    p = binomtest(up, up + down).pvalue if up + down else 1.0
    return f"+{up}/-{down} (sign test p={p:.3f})"


def main() -> None:
    seeds_index, realdocs_index = (Path(a) for a in sys.argv[1:3])
    sets = collect_all({SEEDS: seeds_index, REALDOCS: realdocs_index})
    trains = {
        "seeds dev": [r for s in sets if s.name == "seeds dev" for r in s.rows],
        "pooled dev": [r for s in sets if s.role == "dev" for r in s.rows],
    }
    print("# Answer spans: passage rank or score drop\n")
    print(" ".join(__doc__.split("\n\n")[0].split()) + "\n")
    print(f"Run on `{seeds_index}` and `{realdocs_index}`; scale depth {SCORE_SCALE_DEPTH}.\n")
    fitted, cv_table = {}, []
    for train_name, rows in trains.items():
        for feature, names in FEATURES.items():
            fitted[train_name, feature] = f = fit(rows, names)
            cv = [figures_of(cross_validate(rows, FOLDS, seed, names))[0] for seed in SEEDS_CV]
            cv_table.append([train_name, feature, *cv, str(f.selection), str(f.threshold)])
    print(f"## Fitted, and {FOLDS}-fold cross-validated answers right on the same questions\n")
    head = [f"CV seed {s}" for s in SEEDS_CV]
    print(markdown(cv_table, ["fitted on", "feature", *head, "span weights", "threshold"]))
    print("\n## Question sets that chose nothing\n")
    table = []
    for s in (s for s in sets if s.role == "test"):
        for train_name in trains:
            base = decide(s.rows, fitted[train_name, "rank"])
            for feature in FEATURES:
                decided = decide(s.rows, fitted[train_name, feature])
                change = moved(base, decided) if feature == "drop" else ""
                table.append([s.name, train_name, feature, *figures_of(decided), change])
    head = ["set", "fitted on", "feature", "answers right", "abstained (unanswerable)"]
    print(markdown(table, [*head, "wrongly abstained", "drop vs rank"]))
    print("\n## Findings\n")
    print(FINDINGS)


if __name__ == "__main__":
    main()
