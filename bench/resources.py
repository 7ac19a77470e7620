"""Memory of serving cited spans of a large file and of a corpus full of copies, each
beside the way it was done before (re-enacted here, in the same run).

    .venv/bin/python bench/resources.py        # prints the table, writes bench/RESOURCES.md

- 16 concurrent span requests (10 characters each) into a 100 MB file: the span read from
  the nearest character checkpoint, against reading, decoding and hashing the whole file
  per request (what `/documents/{id}/text` did before);
- the checksum of a 1M-passage vector file, verified at every load, BLAKE3 against sha256;
- an index holding 2,846 copies of one document: duplicate groups stored once with a group
  number per passage, against a list of every other copy per passage; and the JSON of one
  hit with `also_in` capped, against one listing every copy.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path

import numpy as np
from tabulate import tabulate

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from faults import settings_for  # noqa: E402
from hashing import HashEmbedder  # noqa: E402
from scale import memory_mb  # noqa: E402

from rag.build import build_index  # noqa: E402
from rag.corpus import FileStamp, read_document  # noqa: E402
from rag.duplicates import DuplicateGroups  # noqa: E402
from rag.manifest import DocumentRecord, checksum  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.search import location_of  # noqa: E402
from rag.sources import read_cited_span  # noqa: E402


def reset_peak() -> None:
    """Start VmHWM afresh (Linux: writing 5 to clear_refs resets the peak RSS)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def concurrent(n: int, work) -> float:
    """Run `work` in n threads at once; the peak memory growth in MB."""
    reset_peak()
    now = memory_mb()
    before = now["RssAnon"] + now["RssFile"]
    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return memory_mb()["VmHWM"] - before


def spans(work: Path, size_mb: int, clients: int) -> list[list]:
    corpus = work / "big"
    corpus.mkdir()
    line = "Ωμέγα and café: a line of a very large plain-text document, with some words.\n"
    path = corpus / "big.txt"
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(size_mb * 1024 * 1024 // len(line.encode())):
            fh.write(line)
    st = path.stat()
    doc = read_document(FileStamp("big.txt", path, st.st_size, st.st_mtime_ns), corpus)
    record = DocumentRecord(
        doc_id="big.txt",
        title="big",
        sha256=doc.sha256,
        size=doc.size,
        mtime_ns=doc.mtime_ns,
        chunks=1,
        chars=len(doc.text),
        checkpoints=doc.checkpoints,
    )
    middle = len(doc.text) // 2
    del doc

    def before() -> None:  # the whole file read, decoded and hashed for 10 characters
        data = path.read_bytes()
        text = data.decode("utf-8", errors="replace")
        hashlib.sha256(data).hexdigest()
        assert len(text[middle : middle + 10]) == 10

    def after() -> None:
        assert len(read_cited_span(corpus, record, middle, middle + 10).text) == 10

    rows = []
    for label, work_fn in (
        ("whole file per request (before)", before),
        ("from the nearest checkpoint", after),
    ):
        started = time.perf_counter()
        grown = concurrent(clients, work_fn)
        rows.append(
            [
                f"{clients} span requests into a {size_mb} MB file",
                label,
                f"{grown:,.0f} MB",
                f"{(time.perf_counter() - started) * 1000:,.0f}",
            ]
        )
    return rows


def copies(work: Path, n: int) -> list[list]:
    corpus = work / "mirrors"
    corpus.mkdir()
    text = (REPO / "seeds" / "001_ef5df5d5046c4c46.txt").read_text("utf-8")[:1500]
    for i in range(n):
        (corpus / f"mirror-{i:04d}.txt").write_text(text, "utf-8")
    settings = settings_for(corpus, work / "mirror-index")
    build_index(settings, embedder=HashEmbedder())
    pipeline = Pipeline.open(settings, embedder=HashEmbedder())
    texts = [c.text for c in pipeline.index.chunks]

    def quadratic(texts: list[str]) -> dict[int, list[int]]:  # the grouping before
        rows_by_text: dict[str, list[int]] = defaultdict(list)
        for row, t in enumerate(texts):
            rows_by_text[" ".join(t.lower().split())].append(row)
        return {
            r: [o for o in rows if o != r]
            for rows in rows_by_text.values()
            if len(rows) > 1
            for r in rows
        }

    rows = []
    for label, build in (
        ("a list of every other copy per passage (before)", quadratic),
        ("groups stored once, a number per passage", DuplicateGroups),
    ):
        tracemalloc.start()
        started = time.perf_counter()
        held = build(texts)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rows.append(
            [
                f"duplicate groups, {n} copies ({len(texts)} passages)",
                label,
                f"{peak:,.1f} MB",
                f"{(time.perf_counter() - started) * 1000:,.0f}",
            ]
        )
        del held
    hit = pipeline.ask("What is this about?", k=1, mode="dense").hits[0]
    row = next(r for r, c in enumerate(pipeline.index.chunks) if c.chunk_id == hit.chunk_id)
    every = hit.model_copy(
        update={
            "also_in": [
                location_of(pipeline.index, o)
                for o in pipeline.index.duplicates.copies_of(row).tolist()
            ],
            "also_in_more": 0,
        }
    )
    for label, one in (("every copy in also_in (before)", every), ("also_in capped", hit)):
        rows.append(
            [
                f"JSON of one hit, {n} copies",
                label,
                f"{len(one.model_dump_json()) / 1024:,.1f} KB",
                "",
            ]
        )
    return rows


def checksums(work: Path, passages: int) -> list[list]:
    """Verifying a 1M-passage index on load: its vector file checksummed (BLAKE3 on all
    cores, as `load_index` does), beside sha256 of the same file in the same run."""
    path = work / "vectors.npy"
    rng = np.random.default_rng(0)
    with open(path, "wb") as fh:
        for _ in range(0, passages, 100_000):
            fh.write(rng.standard_normal((100_000, 384), dtype=np.float32).tobytes())
    size_gb = path.stat().st_size / 1e9
    checksum(path)  # the page cache warm for both, as on a server that just wrote it
    rows = []
    for label, digest in (("sha256 (one core)", _sha256_file), ("BLAKE3, all cores", checksum)):
        started = time.perf_counter()
        digest(path)
        seconds = time.perf_counter() - started
        rows.append(
            [
                f"checksum of {passages:,} vectors ({size_gb:.2f} GB)",
                label,
                f"{size_gb / seconds:,.1f} GB/s",
                f"{seconds * 1000:,.0f}",
            ]
        )
    path.unlink()
    return rows


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--copies", type=int, default=2846)
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "RESOURCES.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rag-resources-") as tmp:
        rows = spans(Path(tmp), args.size_mb, args.clients)
        rows += copies(Path(tmp), args.copies)
        rows += checksums(Path(tmp), args.passages)
        shutil.rmtree(tmp, ignore_errors=True)
    table = tabulate(
        rows, headers=["what", "how", "memory", "ms"], tablefmt="github", disable_numparse=True
    )
    print(table)
    args.out.write_text(
        "# Memory of spans and copies\n\nProduced by `bench/resources.py` on "
        f"{os.cpu_count()} cores; each figure beside the way it was done before, re-enacted "
        "in the same run. Span rows: peak RSS growth while the requests run at once. "
        "Duplicate rows: peak Python allocations (tracemalloc). JSON rows: size of one hit.\n\n"
        + table
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
