"""A real uvicorn server in a subprocess, on a real socket: start-up, queries, a reload
under continuous load, and a clean shutdown."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from rag.build import build_index
from rag.settings import load_settings

from .conftest import SEEDS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(seed_index, tmp_path: Path):
    """`rag serve` on a copy of the seed corpus and index, with an API key."""
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index.index_dir, index_dir)
    # The copy is rebuilt over the copied corpus: every vector reused, nothing embedded.
    rebuilt = build_index(
        seed_index.model_copy(update={"corpus_dir": corpus, "index_dir": index_dir})
    )
    assert rebuilt.embedded == 0 and rebuilt.spans_embedded == 0
    port = free_port()
    env = {
        **os.environ,
        "RAG_CORPUS_DIR": str(corpus),
        "RAG_INDEX_DIR": str(index_dir),
        "RAG_API_KEY": "k3y",
        "RAG_REQUEST_TIMEOUT": "2",
    }
    log = open(tmp_path / "server.log", "w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("rag")), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    health_seen_first = False
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                break
            health_seen_first = httpx.get(f"{base}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            pass
        assert proc.poll() is None, (tmp_path / "server.log").read_text()
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("server never became ready:\n" + (tmp_path / "server.log").read_text())
    yield {
        "base": base,
        "proc": proc,
        "corpus": corpus,
        "index_dir": index_dir,
        "log": tmp_path / "server.log",
        "health_before_ready": health_seen_first,
    }
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log.close()


def test_real_server_answers_and_shuts_down_cleanly(server):
    base = server["base"]
    assert httpx.get(f"{base}/health").status_code == 200
    response = httpx.post(
        f"{base}/query", json={"question": "How far is Camp Ashraf from Baghdad?", "k": 2}
    )
    assert response.status_code == 200
    assert "77 kilometers" in response.json()["hits"][0]["text"]
    assert httpx.get(f"{base}/documents").status_code == 200
    assert httpx.post(f"{base}/query", content=b"x" * 100_000).status_code == 413
    server["proc"].send_signal(signal.SIGTERM)
    # uvicorn drains, shuts the app down, then re-raises the signal it caught.
    assert server["proc"].wait(timeout=30) in (0, -signal.SIGTERM)
    log = server["log"].read_text()
    assert "Application shutdown complete" in log and "Finished server process" in log
    assert "Traceback" not in log


def test_reload_under_load_fails_no_request(server, real_embedder):
    base = server["base"]
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            while not stop.is_set():
                r = client.get("/query", params={"q": "Where is the lighthouse?", "k": 3})
                statuses.append(r.status_code)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        (server["corpus"] / "lighthouse.txt").write_text(
            "Lighthouse Notes\n\nThe lighthouse on the northern cape was repainted red in May.\n",
            encoding="utf-8",
        )
        settings = load_settings(corpus_dir=server["corpus"], index_dir=server["index_dir"])
        report = build_index(settings, embedder=real_embedder)  # as `rag index` would
        assert report.added == ["lighthouse.txt"] and report.embedded == 1
        denied = httpx.post(f"{base}/admin/reload")
        assert denied.status_code == 401
        reloaded = httpx.post(f"{base}/admin/reload", headers={"X-API-Key": "k3y"}, timeout=60)
        assert reloaded.status_code == 200, reloaded.text
        body = reloaded.json()
        assert body["current"] != body["previous"] and body["documents"] == 6
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(statuses) >= 6 and set(statuses) == {200}
    top = httpx.get(f"{base}/query", params={"q": "Which colour is the lighthouse?", "k": 1})
    assert top.json()["hits"][0]["doc_id"] == "lighthouse.txt"


def test_slow_clients_are_cut_off_and_links_out_of_the_corpus_are_not_served(server, tmp_path):
    base = server["base"]
    port = int(base.rsplit(":", 1)[1])
    # Slow loris: headers a byte at a time never finish; the server closes at the deadline.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        started = time.monotonic()
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        closed = False
        while time.monotonic() - started < 8:
            try:
                slow.sendall(b"X")
                if slow.recv(1, socket.MSG_DONTWAIT) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed = True
                break
            time.sleep(0.25)
        assert closed and 1.5 < time.monotonic() - started < 6
    assert httpx.get(f"{base}/health", timeout=5).status_code == 200  # others unaffected

    doc = "001_ef5df5d5046c4c46.txt"
    url = f"{base}/documents/{doc}/text"
    assert httpx.get(url, params={"start": 0, "end": 20}, timeout=10).status_code == 200
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n" * 100, encoding="utf-8")
    victim = server["corpus"] / doc
    victim.unlink()
    os.symlink(secret, victim)  # swapped for a link after indexing
    response = httpx.get(url, params={"start": 0, "end": 20}, timeout=10)
    assert response.status_code == 404 and "root:x" not in response.text
    assert "outside the corpus" in response.json()["detail"]
    victim.unlink()  # gone entirely: 404 with one line, never a 500
    response = httpx.get(url, params={"start": 0, "end": 20}, timeout=10)
    assert response.status_code == 404 and "rag index" in response.json()["detail"]


def test_a_port_in_use_is_one_line_and_exit_2(seed_index):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [str(Path(sys.executable).with_name("rag")), "serve", "--port", str(port)],
            env={**os.environ, "RAG_INDEX_DIR": str(seed_index.index_dir)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot listen") and result.stderr.count("\n") == 1
    assert "serving on" not in result.stderr
