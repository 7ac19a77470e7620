"""The benchmark suite behind `make bench`: each row is measured in the same run as its
baseline, so that the ratio means something on a shared, noisy machine.

    .venv/bin/python bench/suite.py                 # prints the table, writes bench/RESULTS.md
    .venv/bin/python bench/suite.py --out /tmp/r.md --requests 200

Rows:
- index build throughput (passages/s) vs SentenceTransformer.encode alone on the same texts;
- query latency in-process vs raw question encoding (sentence-transformers) plus a bare
  FAISS search over the same vectors;
- `rag ask` wall time, process start to printed answer, vs `python -c "import
  sentence_transformers"`;
- HTTP latency and throughput from bench/load.py, vs the same questions in-process;
- peak memory (VmHWM) of `rag serve` with the index loaded, after the HTTP runs, vs a plain
  sentence-transformers + FAISS script holding the same vectors.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from load import free_port, run_http, run_in_process, start_server
from scale import memory_mb

from rag.build import build_index
from rag.chunking import with_heading
from rag.embedding import SentenceTransformerEmbedder, embedder_for
from rag.evaluation.metrics import percentile
from rag.evaluation.report import markdown
from rag.pipeline import Pipeline, ensure_index
from rag.questions import load_questions
from rag.settings import Settings, load_settings
from rag.store import current_build

REPO = Path(__file__).resolve().parent.parent
ASK = "How far is Camp Ashraf from Baghdad?"


def wall(command: list[str], runs: int) -> list[float]:
    """Wall times of `runs` runs of `command` (its output discarded; it must succeed)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def percentiles(seconds: list[float]) -> tuple[float, float]:
    return percentile(seconds, 50) * 1000, percentile(seconds, 99) * 1000


def bench_build(settings: Settings, embedder: SentenceTransformerEmbedder) -> dict:
    """Full builds of the corpus into fresh folders (with and without the answer spans)
    against encode() on its passages; the model is loaded and warmed up before all, so none
    pays for that."""
    embedder.load().encode(["warm-up sentence"] * 8)
    builds = {}
    for answers in (True, False):
        with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
            fresh = settings.model_copy(
                update={"index_dir": Path(tmp), "fast_queries": False, "answers": answers}
            )
            builds[answers] = build_index(fresh, embedder=embedder, rebuild=True)
            chunks = Pipeline.open(fresh, embedder).index.chunks
    texts = [with_heading(c.section, c.text) for c in chunks]
    model = embedder.load()
    started = time.perf_counter()
    model.encode(texts, batch_size=settings.batch_size, normalize_embeddings=True)
    baseline = len(texts) / (time.perf_counter() - started)
    return {
        "chunks": builds[True].chunks,
        "spans": builds[True].spans_embedded,
        "ours": builds[True].chunks / builds[True].seconds,
        "without_spans": builds[False].chunks / builds[False].seconds,
        "baseline": baseline,
    }


def bench_queries(settings: Settings, embedder: SentenceTransformerEmbedder, rounds: int) -> dict:
    """Per-question latency of the pipeline as configured (and with less work) against
    encode() plus a bare IndexFlatIP search over the same vectors."""
    import faiss

    questions = [q.question for q in load_questions(REPO / "eval" / "questions.jsonl")]
    questions = questions * rounds
    pipeline = Pipeline.open(settings)
    vectors = np.ascontiguousarray(pipeline.index.vectors, dtype=np.float32)
    bare = faiss.IndexFlatIP(vectors.shape[1])
    bare.add(vectors)
    model = embedder.load()

    def raw(question: str) -> None:
        xq = model.encode([question], normalize_embeddings=True, convert_to_numpy=True)
        bare.search(xq.astype(np.float32), settings.top_k)

    quiet = Pipeline(
        settings.model_copy(update={"answers": False}), pipeline.index, pipeline.embedder
    )
    variants = {
        f"rag, {settings.mode} + answer (default)": lambda q: pipeline.ask(q),
        f"rag, {settings.mode}, no answer": lambda q: quiet.ask(q),
        "rag, dense, no answer": lambda q: quiet.ask(q, mode="dense"),
    }
    timings: dict[str, list[float]] = {name: [] for name in [*variants, "baseline"]}
    for question in questions[:10]:  # warm-up
        raw(question)
        for run in variants.values():
            run(question)
    for question in questions:  # interleaved, so drift hits every variant alike
        for name, run in [*variants.items(), ("baseline", raw)]:
            started = time.perf_counter()
            run(question)
            timings[name].append(time.perf_counter() - started)
    return {
        "encoder": type(pipeline.embedder).__name__,
        "n": len(questions),
        "timings": {name: percentiles(t) for name, t in timings.items()},
    }


def bench_cli(runs: int) -> dict:
    rag = str(Path(sys.executable).with_name("rag"))
    ours = wall([rag, "ask", ASK], runs)
    baseline = wall([sys.executable, "-c", "import sentence_transformers"], max(3, runs // 2))
    return {"ours": ours, "baseline": baseline}


# What a plain script pays to hold the same index: the model, the vectors in FAISS, and one
# question answered; it prints its peak resident set in MB.
_PLAIN_SCRIPT = """
import sys, numpy as np, faiss
from sentence_transformers import SentenceTransformer
from rag.embedding import resolve_model_path
model = SentenceTransformer(resolve_model_path(sys.argv[1]), device="cpu")
vectors = np.load(sys.argv[2])
index = faiss.IndexFlatIP(vectors.shape[1])
index.add(vectors)
index.search(model.encode(["How far is Camp Ashraf from Baghdad?"], normalize_embeddings=True), 5)
print([int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0])
"""


def bench_http(settings: Settings, requests: int) -> dict:
    pipeline = Pipeline.open(settings)
    port = free_port()
    server = start_server(port)
    base = f"http://127.0.0.1:{port}"
    try:
        run_http(base, 20, 1, settings.top_k)  # warm-up
        runs = []
        for clients in (1, 4):
            inside = run_in_process(pipeline, requests, settings.top_k)
            runs.append((run_http(base, requests, clients, settings.top_k), inside))
        rss = memory_mb(server.pid)["VmHWM"]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    build = current_build(settings.index_dir)
    index_mb = sum(p.stat().st_size for p in build.rglob("*") if p.is_file()) / 2**20
    plain = subprocess.run(
        [sys.executable, "-c", _PLAIN_SCRIPT, settings.model, str(build / "vectors.npy")],
        capture_output=True,
        text=True,
        check=True,
    )
    plain_rss = float(plain.stdout.strip().splitlines()[-1])
    return {"runs": runs, "rss": rss, "index_mb": index_mb, "plain_rss": plain_rss}


def render(build: dict, queries: dict, cli: dict, http: dict, settings: Settings) -> str:
    rows = [
        [
            f"index build, passages/s ({build['chunks']} passages, and their {build['spans']} "
            "answer spans embedded too; baseline: `SentenceTransformer.encode` on the "
            "passages alone)",
            f"{build['ours']:.1f}",
            f"{build['baseline']:.1f}",
            f"{build['ours'] / build['baseline']:.2f}x throughput",
        ],
        [
            "index build without answer spans (`RAG_ANSWERS=false`), passages/s",
            f"{build['without_spans']:.1f}",
            f"{build['baseline']:.1f}",
            f"{build['without_spans'] / build['baseline']:.2f}x throughput",
        ],
    ]
    base50, base99 = queries["timings"]["baseline"]
    for name, (p50, p99) in queries["timings"].items():
        if name != "baseline":
            rows.append(
                [
                    f"query in-process p50 / p99 ms, {name} (baseline: ST encode + bare "
                    "FAISS flat search)",
                    f"{p50:.1f} / {p99:.1f}",
                    f"{base50:.1f} / {base99:.1f}",
                    f"{p50 / base50:.2f}x / {p99 / base99:.2f}x",
                ]
            )
    ours, base = statistics.median(cli["ours"]), statistics.median(cli["baseline"])
    rows.append(
        [
            f"`rag ask` wall s, median of {len(cli['ours'])} (max {max(cli['ours']):.2f}); "
            'baseline: `python -c "import sentence_transformers"`',
            f"{ours:.2f}",
            f"{base:.2f}",
            f"{ours / base:.2f}x",
        ]
    )
    for over_http, inside in http["runs"]:
        rows.append(
            [
                f"HTTP p50 / p99 ms, {over_http['name']}, {over_http['n']} requests, "
                f"{over_http['errors']} errors (baseline: in-process, same questions)",
                f"{over_http['p50']:.1f} / {over_http['p99']:.1f}",
                f"{inside['p50']:.1f} / {inside['p99']:.1f}",
                f"{over_http['p50'] / inside['p50']:.2f}x",
            ]
        )
        rows.append(
            [
                f"HTTP throughput req/s, {over_http['name']}",
                f"{over_http['rps']:.1f}",
                f"{inside['rps']:.1f}",
                f"{over_http['rps'] / inside['rps']:.2f}x",
            ]
        )
    rows.append(
        [
            f"server peak RSS MB after the HTTP runs, index {http['index_mb']:.1f} MB on disk "
            "(baseline: a plain script holding the model and the same vectors in FAISS)",
            f"{http['rss']:.0f}",
            f"{http['plain_rss']:.0f}",
            f"{http['rss'] / http['plain_rss']:.2f}x",
        ]
    )
    header = [
        "# Benchmarks",
        "",
        f"`make bench` on {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        f"Corpus `{settings.corpus_dir}`, mode {settings.mode}, k {settings.top_k}, "
        f"questions encoded with {queries['encoder']} ({queries['n']} questions a variant, "
        "interleaved). Each baseline ran in the same run as its row.",
        "",
    ]
    table = markdown(rows, ["measure", "rag", "baseline", "rag / baseline"])
    return "\n".join([*header, table]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    parser.add_argument("--requests", type=int, default=300, help="HTTP requests per run")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the questions")
    parser.add_argument("--cli-runs", type=int, default=5)
    args = parser.parse_args()
    settings = load_settings()
    if shutil.which("rag", path=str(Path(sys.executable).parent)) is None:
        raise SystemExit("rag is not installed beside this Python: run `make install`")
    embedder = embedder_for(settings)
    ensure_index(settings, embedder=embedder)  # the live index, with its ONNX export
    steps = [
        ("build", lambda: bench_build(settings, embedder)),
        ("queries", lambda: bench_queries(settings, embedder, args.rounds)),
        ("cli", lambda: bench_cli(args.cli_runs)),
        ("http", lambda: bench_http(settings, args.requests)),
    ]
    results = {}
    for name, step in steps:
        print(f"bench: {name}...", file=sys.stderr, flush=True)
        results[name] = step()
    table = render(results["build"], results["queries"], results["cli"], results["http"], settings)
    print(table)
    args.out.write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
