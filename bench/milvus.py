"""The Milvus backend against the local one at 10k and 100k synthetic passages, through the
code the index uses: the local build (rag.publish.save_index, FAISS flat + bm25s) and its
sync to Milvus Lite (rag.milvus_sync.sync_index); questions through rag.search.search and
rag.milvus_search.search_milvus, hybrid and dense, one at a time.

    .venv/bin/python bench/milvus.py                          # 10k, 100k -> bench/MILVUS.md
    .venv/bin/python bench/milvus.py --sizes 10000 --out /tmp/milvus.md

Passages: 100 a document, 60 words each drawn from a Zipf vocabulary of 20,000 words (so
BM25 has frequent and rare terms), with 384-d vectors as bench/scale.py draws them (around
1,000 centres). Questions: 4 words and a vector drawn the same way. "Same top-10" is the
share of questions whose 10 passages (ids, in order) equal the local backend's; the local
flat index is exact, so it is also Milvus's recall@10 against exact search. Build s: the
local build without embedding (FAISS flat and bm25s over given vectors), and the sync of
that build into empty collections (inserts, Milvus's BM25 function, flush). 50 questions
a size and mode (`--questions`).

Milvus Lite runs inside this process (a gRPC server on a thread): its memory is the
process's growth while it holds the collections. It is a pure-Python engine, for trying the
backend and for tests; a Milvus server's figures are not measured here (no server runs on
this machine).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import memory_mb, synthetic  # noqa: E402

from rag.chunking import Chunk  # noqa: E402
from rag.evaluation.report import markdown  # noqa: E402
from rag.lexical import LexicalIndex  # noqa: E402
from rag.manifest import DocumentRecord, Manifest  # noqa: E402
from rag.milvus_search import MilvusIndex, search_milvus  # noqa: E402
from rag.milvus_store import Collections, connect, require_stored  # noqa: E402
from rag.milvus_sync import sync_index  # noqa: E402
from rag.params import build_settings_of  # noqa: E402
from rag.publish import save_index  # noqa: E402
from rag.search import search  # noqa: E402
from rag.settings import Settings, load_settings  # noqa: E402
from rag.store import load_index  # noqa: E402
from rag.vector_index import build_vector_index  # noqa: E402

PER_DOC = 100
WORDS = 60
VOCABULARY = 20_000
QUESTIONS = 50  # per size and mode (--questions), as in bench/MILVUS.md
K = 10


def words(rng: np.random.Generator, n: int) -> list[str]:
    ranks = np.minimum(rng.zipf(1.2, size=n), VOCABULARY)
    return [f"w{r}" for r in ranks]


def synthetic_build(settings: Settings, count: int) -> float:
    """A local build of `count` synthetic passages; its seconds (FAISS flat and bm25s)."""
    rng = np.random.default_rng(1)
    vectors = synthetic(count, seed=1)
    chunks, records = [], []
    for d in range(0, count, PER_DOC):
        doc_id = f"doc{d // PER_DOC:05d}.txt"
        start = 0
        for ordinal in range(min(PER_DOC, count - d)):
            text = " ".join(words(rng, WORDS))
            key = hashlib.sha256(f"{doc_id}{ordinal}{text}".encode()).hexdigest()
            chunks.append(
                Chunk(doc_id + f"#{ordinal}", doc_id, ordinal, start, start + len(text),
                      ordinal + 1, ordinal + 1, doc_id, text, key)
            )  # fmt: skip
            start += len(text) + 1
        records.append(
            DocumentRecord(
                doc_id=doc_id, title=doc_id, size=start, chunks=min(PER_DOC, count - d),
                sha256=hashlib.sha256(doc_id.encode()).hexdigest(), mtime_ns=0,
            )
        )  # fmt: skip
    started = time.perf_counter()
    faiss_index, params = build_vector_index(vectors, "flat")
    lexical = LexicalIndex.build(
        [c.embed_text for c in chunks], settings.bm25_stem,
        settings.bm25_stopwords,
    )  # fmt: skip
    manifest = Manifest(
        model=settings.model, dimension=vectors.shape[1], chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap, chunker_version=0, bm25_stem=settings.bm25_stem,
        bm25_stopwords=settings.bm25_stopwords, index_type="flat", index_params=params,
        answer_spans=False, build_settings=build_settings_of(settings), documents=records,
    )  # fmt: skip
    save_index(
        settings.index_dir, manifest, chunks, vectors, faiss_index, lexical,
        np.zeros(0, dtype="S64"), np.zeros((0, vectors.shape[1]), dtype=np.float32),
    )  # fmt: skip
    return time.perf_counter() - started


def du_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True).stdout
    return int(out.split()[0]) / 1024


def percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def run(count: int, folder: Path, questions_asked: int) -> list[dict]:
    corpus = folder / "corpus"
    corpus.mkdir()
    settings = load_settings(
        corpus_dir=corpus, index_dir=folder / "index", backend="milvus",
        milvus_uri=str(folder / "milvus.db"),
    )  # fmt: skip
    local_build_s = synthetic_build(settings, count)
    build = next((folder / "index").glob("build-*"))
    rss0 = memory_mb()["RssAnon"]
    sync = sync_index(settings, build)
    print(f"{count}: local build {local_build_s:.1f}s, Milvus sync {sync.seconds:.1f}s", flush=True)
    client = connect(settings)
    stored = require_stored(client, settings)
    milvus = MilvusIndex(client, Collections(settings.milvus_collection), stored, build)
    rss_milvus = memory_mb()["RssAnon"] - rss0
    local = load_index(settings.index_dir)

    rng = np.random.default_rng(2)
    xqs = synthetic(questions_asked, seed=2)
    questions = [" ".join(words(rng, 4)) for _ in range(questions_asked)]
    rows = []
    for mode in ("hybrid", "dense"):
        times: dict[str, list[float]] = {"local": [], "milvus": []}
        same = 0
        for xq, question in zip(xqs, questions, strict=True):
            t = time.perf_counter()
            ours = search(local, xq, question, K, mode=mode)
            times["local"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            view, theirs = search_milvus(milvus, xq, question, K, mode=mode)
            times["milvus"].append((time.perf_counter() - t) * 1000)
            same += [local.chunks[c.row].chunk_id for c in ours] == [
                view.chunks[c.row].chunk_id for c in theirs
            ]
        print(f"{count} {mode}: {same}/{questions_asked} same", flush=True)
        for backend in ("local", "milvus"):
            p50, p99 = percentiles(times[backend])
            rows.append(
                {
                    "passages": f"{count:,}",
                    "backend": "local flat + bm25s" if backend == "local" else "Milvus Lite",
                    "mode": mode,
                    "build s": round(local_build_s if backend == "local" else sync.seconds, 1),
                    "disk MB": round(du_mb(build if backend == "local" else folder / "milvus.db")),
                    "RSS MB": "" if backend == "local" else round(rss_milvus),
                    "same top-10": "-" if backend == "local" else f"{same / questions_asked:.2f}",
                    "p50 ms": round(p50, 1),
                    "p99 ms": round(p99, 1),
                }
            )
    client.close()
    return rows


def table(rows: list[dict]) -> str:
    return markdown([list(r.values()) for r in rows], list(rows[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--questions", type=int, default=QUESTIONS, help="per size and mode")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("MILVUS.md"))
    args = parser.parse_args()
    rows = []
    for count in args.sizes:
        folder = Path(tempfile.mkdtemp(prefix=f"milvus-bench-{count}-"))
        try:
            rows += run(count, folder, args.questions)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(table(rows), flush=True)
    import milvus_lite
    import pymilvus

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    head = (
        f"`.venv/bin/python bench/milvus.py` on {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}, "
        f"pymilvus {pymilvus.__version__}, "
        f"milvus-lite {milvus_lite.__version__}, {when}."
    )
    doc = __doc__.split("\n\n", 2)[2].strip()
    args.out.write_text(
        f"# Milvus backend: Milvus Lite against the local index\n\n{head}\n\n{doc}\n\n"
        f"{table(rows)}\n"
    )


if __name__ == "__main__":
    main()
