"""Code blocks: a passage of their own, or with the sentence that introduces them?

The Markdown reader gives a fenced code block as a block of the section's text, so the
chunker packs it with its neighbours: "To generate a secure random secret key use the
command:" and "$ openssl rand -hex 32" share a passage when they fit. The alternative puts
a wall before and after each code block, so it is a passage of its own (under its section
heading, which retrieval sees with it). Both are indexed here over the Markdown pages of
the real-document folder and asked every Markdown question of the two question sets.

Usage (each variant in its own process: the wall is a patch of the reader):
    .venv/bin/python eval/code_blocks_study.py with  [REALDOCS] [VECTOR_CACHE]
    .venv/bin/python eval/code_blocks_study.py apart [REALDOCS] [VECTOR_CACHE]
    .venv/bin/python eval/code_blocks_study.py report          (writes eval/code_blocks.md)
VECTOR_CACHE: a vector-cache.sqlite of an index of the folder, to embed only what differs.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION_SETS = {
    "folder's": ROOT.parent / "shared" / "corpora" / "realdocs_questions.jsonl",
    "ours": ROOT / "eval" / "realdocs_questions.jsonl",
}


def code_blocks_apart() -> None:
    """Make every fenced or indented code block its own passage: an empty boilerplate
    block before and after it (the chunker never joins across one)."""
    import rag.readers.markdown as markdown
    from rag.structure import Block

    original = markdown.read_markdown

    def read(source: str, title: str = ""):
        got = original(source, title)
        walls, cursor = [], 0
        for token in markdown._parser().parse(source):
            if token.type not in ("fence", "code_block") or not token.content.strip():
                continue
            at = got.text.find(token.content.strip(), cursor)
            if at < 0:
                continue
            end = at + len(token.content.strip())
            walls += [Block(at, at, "boilerplate"), Block(end, end, "boilerplate")]
            cursor = end
        blocks = sorted([*got.layout.blocks, *walls], key=lambda b: (b.start, b.kind != "prose"))
        return replace(got, layout=replace(got.layout, blocks=tuple(blocks)))

    markdown.read_markdown = read


def run(variant: str, realdocs: Path, vector_cache: Path | None) -> None:
    os.environ["RAG_READ_WORKERS"] = "1"  # the patch lives in this process only
    from rag.cli import app

    work = Path(tempfile.mkdtemp(prefix="code-blocks-"))
    corpus = work / "corpus"
    shutil.copytree(realdocs / "md", corpus / "md")
    index_dir = work / "index"
    index_dir.mkdir()
    if vector_cache is not None:
        shutil.copy(vector_cache, index_dir / "vector-cache.sqlite")
    questions = work / "md.jsonl"
    with questions.open("w") as out:
        for name, path in QUESTION_SETS.items():
            for line in path.read_text().splitlines():
                q = json.loads(line)
                if q.get("format") == "md":
                    out.write(json.dumps({**q, "id": f"{name}:{q['id']}"}) + "\n")
    if variant == "apart":
        code_blocks_apart()
    app(
        [
            "eval", "run", "--questions", str(questions), "--corpus", str(corpus),
            "--index-dir", str(index_dir), "--json", str(work / "result.json"),
        ],
        standalone_mode=False,
    )  # fmt: skip
    shutil.copy(work / "result.json", Path(tempfile.gettempdir()) / f"code_blocks_{variant}.json")
    shutil.rmtree(work)


def report() -> None:
    from tabulate import tabulate

    rows, per_question = [], {}
    for variant in ("with", "apart"):
        data = json.loads((Path(tempfile.gettempdir()) / f"code_blocks_{variant}.json").read_text())
        for mode in data["modes"]:
            m = mode["metrics"]
            rows.append(
                [
                    variant,
                    mode["mode"],
                    *(f"{m[k]:.3f}" for k in ("Hit@1", "Hit@5", "MRR@10", "answer accuracy")),
                ]
            )
            if mode["mode"] == "hybrid":
                for q in mode["per_question"]:
                    if q["answerable"]:
                        rank = q["relevant_ranks"][0] if q["relevant_ranks"] else "-"
                        per_question.setdefault(q["id"], [q["question"]]).append(
                            f"{rank} / {'right' if q['answer_correct'] else 'wrong'}"
                        )
    table = tabulate(
        rows,
        ["code blocks", "mode", "Hit@1", "Hit@5", "MRR@10", "answers right"],
        tablefmt="github",
    )
    detail = tabulate(
        [[k, *v] for k, v in sorted(per_question.items())],
        ["question", "asked", "with its sentence: rank / answer", "apart: rank / answer"],
        tablefmt="github",
    )
    text = "\n\n".join([
        "# Code blocks: with the sentence that introduces them, or apart",
        (__doc__ or "").split("Usage")[0].strip(),
        table,
        "Hybrid, per question (rank of the first answering passage):",
        detail,
    ])  # fmt: skip
    (ROOT / "eval" / "code_blocks.md").write_text(text + "\n")
    print(text)


def main() -> None:
    variant = sys.argv[1] if len(sys.argv) > 1 else "report"
    if variant == "report":
        report()
        return
    realdocs = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT.parent / "shared/corpora/realdocs"
    cache = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    run(variant, realdocs, cache)


if __name__ == "__main__":
    main()
