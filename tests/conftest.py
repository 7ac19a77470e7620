"""Shared fixtures: every test runs in its own folder with clean RAG_* settings; the real
model loads once per session; a tiny deterministic embedder serves pure-logic tests."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rag.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
RELEASE_NOTES = REPO / "tests" / "data" / "realdocs" / "md" / "uvicorn-release-notes.md"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads the developer's RAG_* settings or writes outside its tmp_path."""
    for name in [n for n in __import__("os").environ if n.startswith("RAG_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


class FakeEmbedder:
    """Hashes words into a small unit vector: deterministic, instant, and counts its calls."""

    name = "fake"
    loaded = True  # like a model already in memory
    dimension = 32

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed_batch(self, texts: Sequence[str], kind: str) -> np.ndarray:
        if kind == "document":
            self.embedded.extend(texts)
        rows = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                h = int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little")
                rows[i, h % self.dimension] += 1.0
            rows[i, 0] += 1e-3  # never a zero vector
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of the seed corpus that a test may change."""
    target = tmp_path / "corpus"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture
def fake_settings(tmp_path: Path, corpus: Path) -> Settings:
    return load_settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake")


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled all-MiniLM-L6-v2, loaded once for the whole session."""
    from rag.embedding import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    assert embedder.dimension == 384
    return embedder


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory, real_embedder) -> Settings:
    """The seed corpus indexed once with the real model; tests must not change it."""
    from rag.build import build_index

    settings = load_settings(corpus_dir=SEEDS, index_dir=tmp_path_factory.mktemp("seed-index"))
    build_index(settings, embedder=real_embedder)
    return settings


@pytest.fixture(scope="session")
def release_notes_index(tmp_path_factory: pytest.TempPathFactory, real_embedder) -> Settings:
    """Real release notes (tests/data/realdocs/md/uvicorn-release-notes.md) indexed once with
    the real model: a release's version and date are its heading."""
    from rag.build import build_index

    root = tmp_path_factory.mktemp("release-notes")
    (root / "corpus").mkdir()
    shutil.copy(RELEASE_NOTES, root / "corpus" / RELEASE_NOTES.name)
    settings = load_settings(corpus_dir=root / "corpus", index_dir=root / "index")
    build_index(settings, embedder=real_embedder)
    return settings


@pytest.fixture(scope="session")
def seed_pipeline(seed_index: Settings, real_embedder):
    from rag.pipeline import Pipeline

    return Pipeline.open(seed_index, embedder=real_embedder)
