"""HTTP load test: a bounded number of queries from C concurrent clients to `rag serve` on
127.0.0.1, next to the same queries answered in-process in the same run.

    .venv/bin/python bench/load.py                    # 2,000 requests at C = 1, 4, 16
    .venv/bin/python bench/load.py --requests 500 --out bench/load.md

Prints a Markdown table (and writes it with --out). Latencies are per request, measured by
the client; the in-process row calls `Pipeline.ask` directly, so the ratio column is
the cost of HTTP (server, serialization, client) on top of the work itself.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from rag.evaluation.metrics import percentile
from rag.evaluation.report import markdown
from rag.pipeline import Pipeline, ensure_index
from rag.settings import load_settings

QUESTIONS = [
    "How far is Camp Ashraf from Baghdad?",
    "Who leaked the Montazeri audio tape?",
    "How many political prisoners were executed in 1988?",
    "What did Amnesty International call its report?",
    "Where did MEK supporters rally in Sweden?",
    "Who is the Deputy Director for the Middle East at Amnesty?",
    "How many lorry drivers were arrested?",
    "When was the MEK founded?",
    "What happened at Kahrizak detention center?",
    "Who wrote the graphic novel about Ahmad Raouf-Basharidoust?",
    "Which UN experts wrote to the Iranian regime?",
    "What did the death commission do?",
]


def summarize(name: str, latencies: list[float], wall: float, errors: int) -> dict:
    return {
        "name": name,
        "n": len(latencies) + errors,
        "p50": percentile(latencies, 50) * 1000,
        "p95": percentile(latencies, 95) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "rps": (len(latencies) + errors) / wall,
        "errors": errors,
    }


def run_in_process(pipeline: Pipeline, n: int, k: int) -> dict:
    latencies = []
    started = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        pipeline.ask(QUESTIONS[i % len(QUESTIONS)], k=k)
        latencies.append(time.perf_counter() - t)
    return summarize("in-process", latencies, time.perf_counter() - started, 0)


def run_http(base: str, n: int, concurrency: int, k: int) -> dict:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(n))

    def client_loop() -> None:
        nonlocal errors
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t = time.perf_counter()
                try:
                    r = client.post(
                        "/query", json={"question": QUESTIONS[i % len(QUESTIONS)], "k": k}
                    )
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = time.perf_counter() - t
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors += 1

    threads = [threading.Thread(target=client_loop) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summarize(
        f"HTTP, {concurrency} client(s)", latencies, time.perf_counter() - started, errors
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    rag = Path(sys.executable).with_name("rag")
    proc = subprocess.Popen(
        [str(rag), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit("server exited during start-up; run `rag serve` to see why")
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server not ready after 180 s")


def table(rows: list[dict], baseline: dict) -> str:
    head = ["run", "requests", "p50 ms", "p95 ms", "p99 ms", "req/s", "errors"]
    return markdown(
        [
            [
                r["name"],
                str(r["n"]),
                f"{r['p50']:.1f}",
                f"{r['p95']:.1f}",
                f"{r['p99']:.1f}",
                f"{r['rps']:.1f}",
                str(r["errors"]),
                f"{r['p50'] / baseline['p50']:.2f}x",
            ]
            for r in rows
        ],
        [*head, "p50 vs in-process"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per run")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated client counts")
    parser.add_argument("-k", type=int, default=5, help="passages per query")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args()

    settings = load_settings()
    ensure_index(settings)
    pipeline = Pipeline.open(settings)
    for question in QUESTIONS:  # warm-up
        pipeline.ask(question, k=args.k)

    port = free_port()
    server = start_server(port)
    base = f"http://127.0.0.1:{port}"
    try:
        run_http(base, 50, 1, args.k)  # warm-up
        rows = [run_in_process(pipeline, args.requests, args.k)]
        for c in (int(x) for x in args.concurrency.split(",")):
            rows.append(run_http(base, args.requests, c, args.k))
            rows.append(run_in_process(pipeline, min(args.requests, 500), args.k))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)

    baseline = rows[0]
    report = table(rows, baseline)
    header = (
        f"Corpus `{settings.corpus_dir}` ({len(pipeline.index.chunks)} passages), k={args.k}, "
        f"mode {settings.mode}, answers {'on' if settings.answers else 'off'}, "
        f"{args.requests} requests a run, server and clients on one {os.cpu_count()}-core "
        f"machine ({platform.processor() or platform.machine()}), Python "
        f"{platform.python_version()}. In-process rows between HTTP runs show the machine's "
        "drift during the run. Produced by `python bench/load.py`.\n\n"
        "Reading it: a query costs a fixed amount of CPU (mostly embedding the question), "
        "so throughput is bound by the two cores whatever the "
        "concurrency; with more clients, requests queue and "
        "latency grows with the number of clients while requests per second stay flat."
    )
    print(report)
    if args.out:
        args.out.write_text(f"# HTTP load\n\n{header}\n\n{report}\n", encoding="utf-8")


if __name__ == "__main__":
    main()
