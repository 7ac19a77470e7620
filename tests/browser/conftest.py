"""The browser tests' world: Debian's Chromium under Playwright, and real `rag serve`
processes over a small real index (the seed corpus, built once by tests/conftest.py, plus
documents written to attack or exercise the page)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rag.build import build_index
from rag.settings import Settings

from ..conftest import RELEASE_NOTES, SEEDS
from ..test_server import free_port

MULTI_PAGE_PDF = RELEASE_NOTES.parent.parent / "pdf" / "multi_page.pdf"

# The real binary: /usr/bin/chromium is a wrapper script. Playwright's own download
# cannot reach the internet here, so it is never used.
CHROMIUM = Path("/usr/lib/chromium/chromium")
# No internet here: without these, Chromium's background services spam refused connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
]

# Markup that would run if the page ever inserted corpus text as HTML.
UNTRUSTED = (
    "Untrusted Page\n\n"
    "The harbour master wrote <script>window.__xss=1</script> on the gate of the old "
    "harbour in 1901.\n\n"
    'The caption read <img src=x onerror="window.__xss=1"> beside the name of the '
    "lighthouse keeper, Joan Amat \U0001f30a, who kept the lamp for forty years.\n\n"
    'A third line had <b onmouseover="window.__xss=1">bold</b> text &amp; entities.\n'
)
NOTES = (
    "Field Notes\n\n"
    "The tide table for the northern pier was last checked on 14 March by the survey "
    "boat Kestrel, whose crew counted eleven mooring rings.\n"
)


@dataclass
class Server:
    """A `rag serve` process: its address, corpus, index and log."""

    base: str
    proc: subprocess.Popen
    corpus: Path
    index_dir: Path
    log: Path

    def text_of(self, doc_id: str) -> str:
        """The document as read from disk (newlines untouched), what citations index."""
        with open(self.corpus / doc_id, encoding="utf-8", newline="") as file:
            return file.read()


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the developer's RAG_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return {**env, "HF_HUB_OFFLINE": "1", **extra}


@contextmanager
def rag_serve(
    corpus: Path, index_dir: Path, log: Path, wait_ready: bool = True, **env: str
) -> Iterator[Server]:
    """`rag serve` on a free port, as a user starts it; waits for /ready (or only /health,
    to meet the page while the index is still loading)."""
    port = free_port()
    with open(log, "w+") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("rag")), "serve", "--port", str(port)],
            env=_clean_env(RAG_CORPUS_DIR=str(corpus), RAG_INDEX_DIR=str(index_dir), **env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        server = Server(f"http://127.0.0.1:{port}", proc, corpus, index_dir, log)
        try:
            _wait(server, "/ready" if wait_ready else "/health")
            yield server
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _wait(server: Server, path: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.base + path, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.proc.poll() is not None:
            pytest.fail(f"rag serve exited:\n{server.log.read_text()}")
        time.sleep(0.2)
    pytest.fail(f"rag serve: {path} never answered 200:\n{server.log.read_text()}")


def write_extra_documents(corpus: Path) -> None:
    """The hostile document (twice: the copy comes back as `also_in`, under a folder so the
    page must encode a doc_id with a slash) and the notes the stale-file test edits."""
    (corpus / "untrusted.txt").write_text(UNTRUSTED, encoding="utf-8")
    (corpus / "mirror").mkdir(exist_ok=True)
    (corpus / "mirror" / "untrusted copy.txt").write_text(UNTRUSTED, encoding="utf-8")
    (corpus / "notes.txt").write_text(NOTES, encoding="utf-8")


@pytest.fixture(scope="session")
def page_index(
    tmp_path_factory: pytest.TempPathFactory, seed_index: Settings, real_embedder
) -> Settings:
    """The seed index copied and brought up to date with the extra documents and a real
    release-notes page and a real PDF: only those are embedded."""
    root = tmp_path_factory.mktemp("page")
    corpus = root / "corpus"
    shutil.copytree(SEEDS, corpus)
    write_extra_documents(corpus)
    shutil.copy(RELEASE_NOTES, corpus / RELEASE_NOTES.name)  # answers through headings
    shutil.copy(MULTI_PAGE_PDF, corpus / MULTI_PAGE_PDF.name)  # passages across page breaks
    index_dir = root / "index"
    shutil.copytree(seed_index.index_dir, index_dir)
    settings = seed_index.model_copy(update={"corpus_dir": corpus, "index_dir": index_dir})
    report = build_index(settings, embedder=real_embedder)
    assert report.embedded > 0 and len(report.added) == 5, report
    return settings


@pytest.fixture(scope="session")
def server(page_index: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `rag serve` for the session, ready before the first test."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with rag_serve(page_index.corpus_dir, page_index.index_dir, log) as running:
        yield running


@pytest.fixture(scope="session")
def base_url(server: Server) -> str:
    """pytest-playwright resolves `page.goto("/?q=...")` against it."""
    return server.base


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    if not CHROMIUM.is_file():
        pytest.fail(f"no {CHROMIUM}: install Debian's chromium (apt-get install -y chromium)")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}}
