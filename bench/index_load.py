"""Memory of loading a whole large index (passages, BM25, vectors, answer spans, FAISS) the
way `rag serve` does, against its size on disk.

    .venv/bin/python bench/index_load.py                 # 1,700 documents -> bench/INDEX_LOAD.md
    .venv/bin/python bench/index_load.py --documents 200 --out /tmp/load.md

The corpus is synthetic: documents of random sentences over a 5,000-word vocabulary (about
30 kB each). Vectors are synthetic too: each text's words hashed into 384 dimensions and
normalized (embedding 100k real passages would take hours on 2 cores; the layout of the
index on disk is the same). The index is built by `rag.build.build_index`; a fresh process
then loads it with `Pipeline.open` and answers questions, and reports its memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from hashing import HashEmbedder
from scale import memory_mb

from rag.evaluation.report import markdown

DIMENSION = 384


def write_corpus(folder: Path, documents: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    vocabulary = np.array(
        ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(3, 10)))
         for _ in range(5000)]
    )  # fmt: skip
    folder.mkdir(parents=True)
    for d in range(documents):
        paragraphs = []
        for _ in range(50):
            sentences = [
                " ".join(rng.choice(vocabulary, rng.integers(8, 20))).capitalize() + "."
                for _ in range(rng.integers(3, 6))
            ]
            paragraphs.append(" ".join(sentences))
        text = f"Document {d}\n\n" + "\n\n".join(paragraphs) + "\n"
        (folder / f"doc{d:05d}.txt").write_text(text, encoding="utf-8")


def settings_for(root: Path):
    from rag.settings import Settings

    return Settings(corpus_dir=root / "corpus", index_dir=root / "index", model=HashEmbedder.name)


def load_step(root: Path) -> dict:
    """In a fresh process: open the index as the server does, answer, report memory."""
    from rag.pipeline import Pipeline

    started = time.perf_counter()
    pipeline = Pipeline.open(settings_for(root), embedder=HashEmbedder(DIMENSION))
    load_s = time.perf_counter() - started
    took = []
    for question in ["Document 7", "a question about nothing", "abc def ghi"]:
        t = time.perf_counter()
        pipeline.ask(question)
        took.append(time.perf_counter() - t)
    return {"load_s": load_s, "ask_ms": 1000 * float(np.median(took)), **memory_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=1700)
    parser.add_argument("--out", type=Path, default=Path("bench/INDEX_LOAD.md"))
    parser.add_argument("--step", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(load_step(args.step)))
        return

    from rag.build import build_index
    from rag.store import current_build, load_index

    with tempfile.TemporaryDirectory(prefix="rag-load-") as tmp:
        root = Path(tmp)
        write_corpus(root / "corpus", args.documents)
        started = time.perf_counter()
        report = build_index(settings_for(root), embedder=HashEmbedder(DIMENSION))
        build_s = time.perf_counter() - started
        build = current_build(root / "index")
        sizes = {p.name: p.stat().st_size / 2**20 for p in build.iterdir() if p.is_file()}
        sizes["bm25/"] = sum(p.stat().st_size for p in (build / "bm25").iterdir()) / 2**20
        index_type = load_index(root / "index").manifest.index_type
        out = subprocess.run(
            [sys.executable, __file__, "--step", str(root)],
            capture_output=True,
            text=True,
            check=True,
        )
        loaded = json.loads(out.stdout.strip().splitlines()[-1])

    total = sum(sizes.values())
    lines = [
        "# Loading a large index",
        "",
        f"`.venv/bin/python bench/index_load.py` on {platform.machine()}, {os.cpu_count()} "
        f"cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        __doc__.split("\n\n")[2].replace("\n", " "),
        "",
        f"{args.documents:,} documents, {report.chunks:,} passages, "
        f"{report.spans_embedded:,} answer spans, structure `{index_type}` (auto); "
        f"built in {build_s:.0f} s.",
        "",
        markdown(
            [
                *[[name, f"{mb:.1f}"] for name, mb in sorted(sizes.items())],
                ["**index on disk**", f"**{total:.1f}**"],
            ],
            ["file", "MB"],
        ),
        "",
        markdown(
            [
                ["load time, s", f"{loaded['load_s']:.1f}"],
                ["question, median ms", f"{loaded['ask_ms']:.1f}"],
                ["peak resident set (VmHWM), MB", f"{loaded['VmHWM']:.0f}"],
                ["anonymous memory after, MB", f"{loaded['RssAnon']:.0f}"],
                ["file-backed (memory-mapped) after, MB", f"{loaded['RssFile']:.0f}"],
                ["peak / index size", f"{loaded['VmHWM'] / total:.2f}x"],
            ],
            ["loaded by `Pipeline.open`, then 3 questions", "value"],
        ),
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
