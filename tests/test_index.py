"""The index on disk: round trip, incremental rebuilds, atomic publication, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rag.build import build_index
from rag.embedding import vector_key
from rag.errors import CorpusNotFound, IndexCorrupt, IndexMismatch, IndexNotFound
from rag.freshness import index_is_current
from rag.manifest import (
    CHUNKS,
    FAISS_INDEX,
    FORMAT_VERSION,
    MANIFEST,
    SPAN_VECTORS,
    VECTORS,
    read_manifest,
)
from rag.passages import answer_span_texts
from rag.pipeline import Pipeline, ensure_index
from rag.settings import Settings
from rag.store import current_build, load_index

from .conftest import REPO, FakeEmbedder


def test_round_trip(fake_settings: Settings, fake_embedder: FakeEmbedder):
    report = build_index(fake_settings, embedder=fake_embedder)
    assert report.added and not report.changed and report.chunks > 100
    index = load_index(fake_settings.index_dir, model="fake")
    manifest = json.loads((index.path / MANIFEST).read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["bm25_stem"] is True and "bm25/params.index.json" in manifest["files"]
    assert manifest["model"] == "fake" and manifest["dimension"] == 32
    assert manifest["chunk_size"] == 600 and manifest["chunk_overlap"] == 300
    assert manifest["counts"] == {"documents": 5, "chunks": report.chunks}
    assert {d["doc_id"] for d in manifest["documents"]} == {
        p.name for p in fake_settings.corpus_dir.iterdir()
    }
    assert all(len(d["sha256"]) == 64 for d in manifest["documents"]) and manifest["built_at"]
    # Stored vectors are what the embedder made for each passage, in chunk order.
    vectors = np.load(index.path / VECTORS)
    assert vectors.shape == (report.chunks, 32) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for chunk in index.chunks:
        text = (fake_settings.corpus_dir / chunk.doc_id).read_bytes().decode("utf-8")
        assert text[chunk.start : chunk.end] == chunk.text
        assert text.count("\n", 0, chunk.start) + 1 == chunk.line_start
    # Identical passages (003 reprints 004) share one embedding call.
    assert report.embedded < report.chunks
    # Every answer span of every passage has its vector, found by its text.
    spans = answer_span_texts(index.chunks, "fake")
    assert report.spans_embedded == len(spans) == len(index.span_keys)
    texts = list(spans.values())[:50]
    rows = index.span_rows([vector_key("fake", t) for t in texts])
    assert (rows >= 0).all()
    stored = index.span_vectors[rows]
    assert stored.dtype == np.float16  # half the size; cosines agree to about 1e-3
    assert np.allclose(stored, fake_embedder.embed_batch(texts, "query"), atol=2e-3)
    assert (index.span_rows([vector_key("fake", "never indexed")]) == -1).all()

    response = Pipeline(fake_settings, index, fake_embedder).ask("Camp Ashraf Baghdad kilometers")
    assert response.hits and response.hits[0].rank == 1


def test_unchanged_corpus_is_up_to_date(fake_settings: Settings, fake_embedder: FakeEmbedder):
    build_index(fake_settings, embedder=fake_embedder)
    first = current_build(fake_settings.index_dir)
    again = build_index(fake_settings, embedder=FakeEmbedder())
    assert again.up_to_date and current_build(fake_settings.index_dir) == first
    assert index_is_current(fake_settings, read_manifest(first))


def test_incremental_rebuild_embeds_only_changed_passages(fake_settings: Settings):
    build_index(fake_settings, embedder=FakeEmbedder())
    corpus = fake_settings.corpus_dir
    changed = corpus / "002_d2ed503e188a2ca5.txt"
    changed.write_text(
        changed.read_text(encoding="utf-8")
        + "\n\nA New Section\n\nThe organizers announced a second vigil for next spring.\n",
        encoding="utf-8",
    )
    (corpus / "000_3adcc106da112fc4.txt").unlink()
    (corpus / "sub").mkdir()
    (corpus / "sub" / "new.md").write_text(
        "# Added\n\nA brand new document about lighthouses arrived today.\n", encoding="utf-8"
    )
    manifest = read_manifest(current_build(fake_settings.index_dir))
    assert not index_is_current(fake_settings, manifest)

    counting = FakeEmbedder()
    report = build_index(fake_settings, embedder=counting)
    assert report.changed == ["002_d2ed503e188a2ca5.txt"]
    assert report.removed == ["000_3adcc106da112fc4.txt"]
    assert report.added == ["sub/new.md"]
    # Only the new passages were embedded: the one of new.md and the changed tail of 002,
    # with their new answer spans (the sentences and the headings that no stored span had).
    assert report.embedded == 2 and 2 <= report.spans_embedded <= 6
    assert len(counting.embedded) == report.embedded + report.spans_embedded
    assert any("second vigil" in t for t in counting.embedded)
    assert any("lighthouses" in t for t in counting.embedded)
    assert report.reused == report.chunks - 2
    index = load_index(fake_settings.index_dir)
    assert "sub/new.md" in index.documents and "000_3adcc106da112fc4.txt" not in index.documents


def test_build_failure_before_publish_keeps_old_index(
    fake_settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    build_index(fake_settings, embedder=FakeEmbedder())
    before = load_index(fake_settings.index_dir)
    (fake_settings.corpus_dir / "004_344e65d2d89902b4.txt").write_text(
        "Entirely Different\n\nNothing of the old text is left in this file now.\n",
        encoding="utf-8",
    )

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("rag.publish.publish_build", crash)
    from rag.vector_cache import VectorCache

    opened: list[VectorCache] = []
    real_init = VectorCache.__init__

    def recording_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(VectorCache, "__init__", recording_init)
    with pytest.raises(OSError):
        build_index(fake_settings, embedder=FakeEmbedder())
    assert opened and all(c._db is None for c in opened)  # the failed build closed its cache
    after = load_index(fake_settings.index_dir)
    assert after.path == before.path and len(after.chunks) == len(before.chunks)
    response = Pipeline(fake_settings, after, FakeEmbedder()).ask("Amnesty report")
    assert response.hits


_SLOW_BUILD = """
import sys, time
sys.path.insert(0, {tests!r})
from conftest import FakeEmbedder
from rag.build import build_index
from rag.settings import load_settings

class Slow(FakeEmbedder):
    def embed_batch(self, texts, kind):
        time.sleep(0.01)
        return super().embed_batch(texts, kind)

print("start", flush=True)
build_index(load_settings(corpus_dir={corpus!r}, index_dir={index!r}, model="fake", batch_size=4),
            embedder=Slow(), rebuild=True)
"""


def test_killed_build_leaves_a_loadable_index(fake_settings: Settings):
    build_index(fake_settings, embedder=FakeEmbedder())
    chunks_before = len(load_index(fake_settings.index_dir).chunks)
    script = _SLOW_BUILD.format(
        tests=str(REPO / "tests"),
        corpus=str(fake_settings.corpus_dir),
        index=str(fake_settings.index_dir),
    )
    outcomes = set()
    for delay in (0.0, 0.15, 0.3, 0.5, 0.8, 1.2, 2.0):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=REPO)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"start"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        index = load_index(fake_settings.index_dir)  # never half-written
        assert len(index.chunks) == chunks_before == index.faiss_index.ntotal
        outcomes.add(index.path.name)
    builds = [p for p in fake_settings.index_dir.iterdir() if p.name.startswith("build-")]
    assert all((fake_settings.index_dir / name / MANIFEST).is_file() for name in outcomes)
    build_index(fake_settings, embedder=FakeEmbedder(), rebuild=True)
    builds = [p for p in fake_settings.index_dir.iterdir() if p.name.startswith("build-")]
    assert len(builds) <= 2


def test_missing_index(tmp_path: Path):
    with pytest.raises(IndexNotFound, match="run `rag index`"):
        load_index(tmp_path / "nowhere")


@pytest.mark.parametrize("victim", [CHUNKS, VECTORS, FAISS_INDEX, MANIFEST, SPAN_VECTORS])
@pytest.mark.parametrize("damage", ["delete", "truncate", "garble"])
def test_damaged_index_files_give_one_clear_line(fake_settings: Settings, victim: str, damage: str):
    build_index(fake_settings, embedder=FakeEmbedder())
    path = current_build(fake_settings.index_dir) / victim
    if damage == "delete":
        path.unlink()
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        data = bytearray(path.read_bytes())
        data[:16] = b"\xff" * 16
        path.write_bytes(bytes(data))
    with pytest.raises((IndexCorrupt, IndexMismatch)) as info:
        load_index(fake_settings.index_dir)
    message = str(info.value)
    assert "\n" not in message and "rag index" in message


def test_model_mismatch(fake_settings: Settings):
    build_index(fake_settings, embedder=FakeEmbedder())
    with pytest.raises(IndexMismatch, match="built with model 'fake'.*run `rag index`"):
        load_index(fake_settings.index_dir, model="all-MiniLM-L6-v2")


def test_ensure_index_builds_once_then_follows_changes(fake_settings: Settings):
    assert ensure_index(fake_settings, embedder=FakeEmbedder()) is not None
    assert ensure_index(fake_settings, embedder=FakeEmbedder()) is None
    doc = fake_settings.corpus_dir / "001_ef5df5d5046c4c46.txt"
    os.utime(doc, ns=(1, 1))  # touched, same content: hashed, found unchanged
    assert ensure_index(fake_settings, embedder=FakeEmbedder()) is None
    doc.write_text("Replaced\n\nThe whole text of this file was replaced today.\n", "utf-8")
    report = ensure_index(fake_settings, embedder=FakeEmbedder())
    assert report is not None and report.changed == ["001_ef5df5d5046c4c46.txt"]


def test_skipped_files_do_not_trigger_rebuilds(fake_settings: Settings):
    (fake_settings.corpus_dir / "empty.txt").write_bytes(b"")
    report = build_index(fake_settings, embedder=FakeEmbedder())
    assert report.skipped == ["empty.txt"]
    assert ensure_index(fake_settings, embedder=FakeEmbedder()) is None


def test_empty_corpus_keeps_previous_index(fake_settings: Settings):
    build_index(fake_settings, embedder=FakeEmbedder())
    for path in fake_settings.corpus_dir.iterdir():
        path.unlink()
    with pytest.raises(CorpusNotFound, match="no readable"):
        build_index(fake_settings, embedder=FakeEmbedder())
    assert len(load_index(fake_settings.index_dir).documents) == 5


def test_answer_spans_follow_the_answers_setting(fake_settings: Settings):
    quiet = fake_settings.model_copy(update={"answers": False})
    first = build_index(quiet, embedder=FakeEmbedder())
    assert first.spans_embedded == 0 and not len(load_index(quiet.index_dir).span_keys)
    assert build_index(quiet, embedder=FakeEmbedder()).up_to_date
    again = build_index(fake_settings, embedder=FakeEmbedder())  # answers on: spans needed
    assert not again.up_to_date and again.embedded == 0 and again.spans_embedded > 0
    assert len(load_index(fake_settings.index_dir).span_keys) == again.spans_embedded
