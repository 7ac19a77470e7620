"""The fault campaign behind `make faults`: what users and attackers do to an index and a
server, repeated, with what survived and what was lost.

    .venv/bin/python bench/faults.py            # prints the table, writes bench/FAULTS.md
    .venv/bin/python bench/faults.py --kills 5 --out /tmp/f.md

Faults:
- kill -9 of `rag index` at a random moment (a full rebuild of the seeds with a slow
  embedder): the index must still load, and the next build must embed only what the
  killed one had not saved;
- same-size damage (a run of zeroed bytes) in every file of a build: the load must refuse
  it, and `rag index` must repair it;
- a damaged CURRENT pointer (empty, garbage, a missing build, a path outside): `rag index`
  must repair it without embedding anything;
- a corpus file swapped for a symlink to a file outside the corpus, after indexing: the
  API must never serve the target;
- hostile HTTP requests to a real server (traversal ids, NaN, huge and malformed bodies,
  slow clients): a 4xx or a closed connection, never a 5xx.

"Data lost" counts tries where something a user had was gone or wrong: an index that no
longer loads, vectors embedded again that the cache held, bytes served from outside
the corpus, a wrong answer served from a damaged file.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from tabulate import tabulate

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from hashing import HashEmbedder  # noqa: E402

from api.main import create_app  # noqa: E402
from api.server import RequestDeadlineProtocol  # noqa: E402
from rag.build import build_index  # noqa: E402
from rag.embedding import vector_key  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.manifest import read_manifest  # noqa: E402
from rag.settings import load_settings  # noqa: E402
from rag.store import POINTER, current_build, load_index  # noqa: E402
from rag.vector_cache import CACHE_FILE  # noqa: E402


def settings_for(corpus: Path, index: Path):
    return load_settings(corpus_dir=corpus, index_dir=index, model="hash", batch_size=16)


def child_build(corpus: str, index: str) -> None:
    """The build that gets killed (run in its own process)."""
    import rag.vector_sources

    rag.vector_sources.COMMIT_TEXTS = 64  # commit often, so that kills leave something to resume
    print("start", flush=True)
    build_index(
        settings_for(Path(corpus), Path(index)), embedder=HashEmbedder(delay=0.15), rebuild=False
    )


def total_texts(corpus: Path, work: Path) -> int:
    embedder = HashEmbedder()
    build_index(settings_for(corpus, work / "reference"), embedder=embedder)
    return embedder.embedded


def kills(corpus: Path, work: Path, tries: int, rng: random.Random) -> dict:
    """kill -9 at a random moment of a build; then the index loads, and resuming embeds
    only what was not saved."""
    total = total_texts(corpus, work)
    survived = lost = resumed = 0
    for attempt in range(tries):
        index = work / f"kill-{attempt}"
        build_index(settings_for(corpus, index), embedder=HashEmbedder())  # a live index
        before = current_build(index)
        for path in corpus.glob("*.txt"):  # every sentence changes: a full re-embed
            text = path.read_text("utf-8").replace(". ", f". (r{attempt}) ")
            path.write_text(text, "utf-8")
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", str(corpus), str(index)],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"start"
        time.sleep(rng.uniform(0.2, 8.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        try:
            loaded = load_index(index)
            ok = loaded.path in (before, current_build(index))
        except RagError:
            ok = False
        saved = set(_all_keys(index))  # the cache, with what the killed build committed
        embedder = HashEmbedder()
        report = build_index(settings_for(corpus, index), embedder=embedder)
        done = report.build is not None or report.up_to_date
        resumed += report.cached
        again = {vector_key("hash", text) for text in embedder.texts}
        wasted = bool(again & saved)  # a vector the cache held, embedded again
        survived += ok and done and not wasted
        lost += (not ok) or wasted
    return {
        "tries": tries,
        "survived": survived,
        "lost": lost,
        "note": f"{resumed} vectors resumed from the cache; {total} texts a full build",
    }


def _all_keys(index: Path) -> list[str]:
    db = index / CACHE_FILE
    if not db.exists():
        return []
    import sqlite3

    with sqlite3.connect(db) as conn:
        return [k for (k,) in conn.execute("SELECT key FROM vectors")]


def corruption(corpus: Path, work: Path) -> dict:
    """Zeroed bytes, size kept, in each file of a build."""
    index = work / "corrupt"
    build_index(settings_for(corpus, index), embedder=HashEmbedder())
    names = list(read_manifest(current_build(index)).files)
    survived = lost = 0
    for name in names:
        path = current_build(index) / name
        size = path.stat().st_size
        with open(path, "r+b") as fh:
            fh.seek(min(128, size // 2))
            fh.write(b"\x00" * min(4096, size - fh.tell()))
        try:
            load_index(index)
            detected = False
        except RagError:
            detected = True
        embedder = HashEmbedder()
        build_index(settings_for(corpus, index), embedder=embedder)
        repaired = _loads(index)
        survived += detected and repaired
        lost += not detected or not repaired
    return {
        "tries": len(names),
        "survived": survived,
        "lost": lost,
        "note": "every file of a build: " + ", ".join(sorted(names)),
    }


def _loads(index: Path) -> bool:
    try:
        load_index(index)
        return True
    except RagError:
        return False


def pointers(corpus: Path, work: Path) -> dict:
    variants = [b"", b"\x00\xff garbage", b"build-19700101T000000-deadbeef", b"../../etc"]
    survived = lost = 0
    for n, variant in enumerate(variants):
        index = work / f"pointer-{n}"
        build_index(settings_for(corpus, index), embedder=HashEmbedder())
        (index / POINTER).write_bytes(variant)
        refused = not _loads(index)
        embedder = HashEmbedder()
        build_index(settings_for(corpus, index), embedder=embedder)
        fine = _loads(index) and embedder.embedded == 0
        survived += refused and fine
        lost += not fine
    return {
        "tries": len(variants),
        "survived": survived,
        "lost": lost,
        "note": "empty, garbage, a missing build, a path outside; repaired with 0 embedded",
    }


def serving(corpus: Path, work: Path, tries: int, rng: random.Random) -> tuple[dict, dict]:
    """A real server over the corpus: symlink swaps, then hostile requests."""
    index = work / "serve"
    settings = settings_for(corpus, index).model_copy(update={"request_timeout": 1.0})
    build_index(settings, embedder=HashEmbedder())
    app = create_app(settings, load=False)
    app.state.rag.embedder = HashEmbedder()
    app.state.rag.load()
    port = _free_port()
    protocol = type("P", (RequestDeadlineProtocol,), {"request_timeout": 1.0})
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, http=protocol, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    while not server.started:
        time.sleep(0.05)
    secret = work / "secret.txt"
    secret.write_text("TOP-SECRET-OUTSIDE-THE-CORPUS\n" * 1000, "utf-8")
    documents = [d.doc_id for d in load_index(index).manifest.documents]
    swaps = {"tries": tries, "survived": 0, "lost": 0, "note": "file replaced by a link out"}
    for _ in range(tries):
        doc = rng.choice(documents)
        path = corpus / doc
        original = path.read_bytes()
        path.unlink()
        os.symlink(secret, path)
        response = httpx.get(f"{base}/documents/{doc}/text", params={"start": 0, "end": 40})
        leaked = "TOP-SECRET" in response.text
        swaps["survived"] += response.status_code == 404 and not leaked
        swaps["lost"] += leaked
        path.unlink()
        path.write_bytes(original)
    hostile = [
        ("GET", "/documents/..%2F..%2Fetc%2Fpasswd/text", None),
        ("GET", "/documents/../../etc/passwd/text", None),
        ("GET", f"/documents/{documents[0]}/text?start=-1&end=5", None),
        ("GET", f"/documents/{documents[0]}/text?start=0&end=999999999", None),
        ("GET", "/query?q=x&min_score=NaN", None),
        ("GET", "/query?q=x&k=100000", None),
        ("GET", "/query?q=" + "a" * 5000, None),
        ("POST", "/query", b'{"question": "x", "min_score": NaN}'),
        ("POST", "/query", b'{"question": "x", "doc_ids": ["../../etc/passwd"]}'),
        ("POST", "/query", b"{not json"),
        ("POST", "/query", b'{"question": "' + b"a" * 200_000 + b'"}'),
        ("POST", "/admin/reload", b""),
    ]
    ok = 0
    for method, url, body in hostile:
        response = httpx.request(
            method,
            base + url,
            content=body,
            headers={"content-type": "application/json"},
            timeout=30,
        )
        ok += 400 <= response.status_code < 500 or response.status_code == 200
    loris = _slow_loris(port)
    ok += loris
    server.should_exit = True
    thread.join(timeout=10)
    requests = {
        "tries": len(hostile) + 1,
        "survived": ok,
        "lost": 0,
        "note": "traversal ids, NaN, huge k/bodies, bad JSON, a slow loris: no 5xx",
    }
    return swaps, requests


def _slow_loris(port: int) -> bool:
    """Headers a byte at a time: the server must close the connection at its deadline."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\n")
        started = time.monotonic()
        while time.monotonic() - started < 5:
            try:
                conn.sendall(b"X")
                if conn.recv(1, socket.MSG_DONTWAIT) == b"":
                    return True
            except BlockingIOError:
                pass
            except OSError:
                return True
            time.sleep(0.2)
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--swaps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "FAULTS.md")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_build(*args.child)
        return
    rng = random.Random(args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rag-faults-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        shutil.copytree(REPO / "seeds", corpus)
        rows = {"kill -9 during a build": kills(corpus, work, args.kills, rng)}
        rows["same-size damage of an index file"] = corruption(corpus, work)
        rows["damaged CURRENT pointer"] = pointers(corpus, work)
        swaps, hostile = serving(corpus, work, args.swaps, rng)
        rows["symlink swapped in after indexing"] = swaps
        rows["hostile HTTP requests"] = hostile
    table = tabulate(
        [[fault, r["tries"], r["survived"], r["lost"], r["note"]] for fault, r in rows.items()],
        headers=["fault", "tries", "survived", "data lost", "what"],
        tablefmt="github",
    )
    print(table)
    text = (
        "# Fault campaign\n\nProduced by `make faults` (`bench/faults.py`, seed "
        f"{args.seed}) in {time.perf_counter() - started:.0f} s on {os.cpu_count()} cores; "
        "the seed corpus, a hashing embedder (the faults are the index's, not the model's)."
        "\n\n" + table + "\n"
    )
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
