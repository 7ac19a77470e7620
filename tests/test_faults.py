"""Hostile files, damaged indexes and interrupted builds: nothing outside the corpus is
read, and no fault costs the user their index or the vectors already embedded."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import rag.vector_sources
from api.main import create_app
from rag.build import build_index
from rag.corpus import list_document_files, read_document_text
from rag.duplicates import DuplicateGroups
from rag.errors import CorpusNotFound, DocumentNotFound, IndexCorrupt
from rag.manifest import BM25, FAISS_INDEX, SPAN_VECTORS, VECTORS
from rag.onnx_encoder import ENCODERS
from rag.pipeline import Pipeline, ensure_index
from rag.search import MAX_ALSO_IN
from rag.settings import Settings
from rag.sources import read_cited_span
from rag.store import POINTER, current_build, indexed_records, load_index
from rag.vector_cache import CACHE_FILE, VectorCache

from .conftest import FakeEmbedder

DOC = "001_ef5df5d5046c4c46.txt"


def _builds(index_dir: Path) -> list[Path]:
    return sorted(p for p in index_dir.iterdir() if p.name.startswith("build-"))


# Symlinks and file names


def test_links_out_of_the_corpus_are_never_indexed(fake_settings: Settings, tmp_path, caplog):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("The secret password is swordfish.\n", "utf-8")
    corpus = fake_settings.corpus_dir
    os.symlink(outside / "secret.txt", corpus / "x.txt")
    os.symlink(outside, corpus / "linked-folder")
    os.symlink(corpus / DOC, corpus / "inside-link.txt")  # inside to inside is fine
    with caplog.at_level(logging.WARNING, logger="rag"):
        ids = [s.doc_id for s in list_document_files(corpus)]
    assert "x.txt" not in ids and not any(i.startswith("linked-folder") for i in ids)
    assert "inside-link.txt" in ids
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("links outside the corpus" in m for m in warnings) == 2
    assert "skipped x.txt: links outside the corpus folder" in warnings  # named as an id
    caplog.clear()  # the folder is listed again at every question: said once is enough
    with caplog.at_level(logging.WARNING, logger="rag"):
        list_document_files(corpus)
    assert not any("links outside" in r.getMessage() for r in caplog.records)
    report = build_index(fake_settings, embedder=FakeEmbedder())
    texts = " ".join(c.text for c in load_index(fake_settings.index_dir).chunks)
    assert "swordfish" not in texts
    assert report.skipped_reasons == {"link outside the corpus": 2}  # in the summary too


def test_a_file_swapped_for_a_link_after_indexing_is_not_served(fake_settings: Settings, tmp_path):
    build_index(fake_settings, embedder=FakeEmbedder())
    record = indexed_records(fake_settings.index_dir)[DOC]
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n" * 50, "utf-8")
    victim = fake_settings.corpus_dir / DOC
    victim.unlink()
    os.symlink(secret, victim)
    with pytest.raises(DocumentNotFound, match="outside the corpus") as raised:
        read_cited_span(fake_settings.corpus_dir, record, 0, 20)
    # Told by document id, never by where the corpus lies (the message reaches HTTP clients).
    assert str(raised.value).startswith(f"{DOC} links outside")
    assert str(fake_settings.corpus_dir) not in str(raised.value)
    with pytest.raises(DocumentNotFound):
        read_document_text(fake_settings.corpus_dir, DOC)


def test_a_file_name_that_is_not_utf8_is_skipped_before_embedding(fake_settings: Settings, caplog):
    corpus = os.fsencode(fake_settings.corpus_dir)
    with open(os.path.join(corpus, b"caf\xe9.txt"), "wb") as fh:
        fh.write(b"A cafe document with enough words to make a passage of its own.\n")
    with caplog.at_level(logging.WARNING, logger="rag"):
        report = build_index(fake_settings, embedder=FakeEmbedder())
    assert len(report.added) == 5 and report.build is not None
    assert any(
        "not valid UTF-8" in r.getMessage() and "caf\\xe9" in r.getMessage() for r in caplog.records
    )
    assert len(_builds(fake_settings.index_dir)) == 1  # no orphan build folders
    assert ensure_index(fake_settings, embedder=FakeEmbedder()) is None


def test_a_very_deep_tree_is_walked_without_recursion(tmp_path: Path):
    root = tmp_path / "deep"
    folders = [root]
    for _ in range(1100):  # deeper than Python's recursion limit
        folders.append(folders[-1] / "d")
    for folder in folders:
        os.mkdir(folder)
    (folders[-1] / "bottom.txt").write_text("The bottom of a very deep tree.\n", "utf-8")
    (root / "top.txt").write_text("The top.\n", "utf-8")
    try:
        ids = [s.doc_id for s in list_document_files(root)]
        assert ids[-1] == "top.txt" and ids[0].endswith("d/d/bottom.txt")
    finally:  # removed bottom-up: pytest's own clean-up would recurse as deep
        (folders[-1] / "bottom.txt").unlink()
        (root / "top.txt").unlink()
        for folder in reversed(folders):
            os.rmdir(folder)


def test_unlistable_folders_are_skipped_with_a_warning(tmp_path: Path, caplog):
    root = tmp_path / "c"
    (root / "locked").mkdir(parents=True)
    (root / "a.txt").write_text("Some text here.\n", "utf-8")
    fifo = root / "pipe.txt"
    os.mkfifo(fifo)  # not a regular file: skipped, never opened (it would block)
    with caplog.at_level(logging.WARNING, logger="rag"):
        os.chmod(root / "locked", 0)
        try:
            stamps = list_document_files(root)
        finally:
            os.chmod(root / "locked", 0o755)
    assert [s.doc_id for s in stamps] == ["a.txt"]


def test_a_corpus_without_passages_is_one_clear_line(fake_settings: Settings):
    for path in fake_settings.corpus_dir.iterdir():
        path.write_text("Home\n", "utf-8")
    with pytest.raises(CorpusNotFound, match="no passage") as info:
        build_index(fake_settings, embedder=FakeEmbedder())
    assert "\n" not in str(info.value)


# Index damage


@pytest.mark.parametrize("pointer", ["", "garbage\x00\xff", "build-nonexistent", "../../etc"])
def test_a_damaged_pointer_is_repaired_without_embedding_again(
    fake_settings: Settings, pointer: str
):
    build_index(fake_settings, embedder=FakeEmbedder())
    (fake_settings.index_dir / POINTER).write_bytes(pointer.encode("utf-8", "surrogateescape"))
    with pytest.raises(IndexCorrupt, match="run `rag index`") as info:
        load_index(fake_settings.index_dir)
    assert "\n" not in str(info.value)
    embedder = FakeEmbedder()
    report = ensure_index(fake_settings, embedder=embedder)  # what `rag ask`/`serve` do
    assert report is not None and report.embedded == 0 and embedder.embedded == []
    assert len(load_index(fake_settings.index_dir).chunks) == report.chunks


def test_rebuild_after_a_damaged_pointer_succeeds(fake_settings: Settings):
    build_index(fake_settings, embedder=FakeEmbedder())
    (fake_settings.index_dir / POINTER).write_text("nonsense", "utf-8")
    report = build_index(fake_settings, embedder=FakeEmbedder(), rebuild=True)
    assert report.build is not None and load_index(fake_settings.index_dir).chunks


def _zero_keeping_size(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as fh:  # the header stays: only the data is lost
        fh.seek(min(128, size // 2))
        fh.write(b"\x00" * (size - fh.tell()))


@pytest.mark.parametrize("victim", [VECTORS, FAISS_INDEX, SPAN_VECTORS, "bm25/data.csc.index.npy"])
def test_same_size_damage_is_caught_on_load(fake_settings: Settings, victim: str):
    build_index(fake_settings, embedder=FakeEmbedder())
    path = current_build(fake_settings.index_dir) / victim
    size = path.stat().st_size
    _zero_keeping_size(path)
    assert path.stat().st_size == size
    with pytest.raises(IndexCorrupt, match="checksum") as info:
        load_index(fake_settings.index_dir)
    assert "\n" not in str(info.value) and "run `rag index`" in str(info.value)
    embedder = FakeEmbedder()
    report = build_index(fake_settings, embedder=embedder)  # the advised command repairs
    assert not report.up_to_date and (victim in (VECTORS, SPAN_VECTORS) or not embedder.embedded)
    assert load_index(fake_settings.index_dir).chunks


def test_damaged_vectors_are_not_reused(fake_settings: Settings):
    build_index(fake_settings, embedder=FakeEmbedder())
    good = np.array(load_index(fake_settings.index_dir).vectors)
    _zero_keeping_size(current_build(fake_settings.index_dir) / VECTORS)
    (fake_settings.corpus_dir / "new.txt").write_text("A new note about something.\n", "utf-8")
    build_index(fake_settings, embedder=FakeEmbedder())
    index = load_index(fake_settings.index_dir)
    rows = [r for r, c in enumerate(index.chunks) if c.doc_id != "new.txt"]
    assert np.allclose(index.vectors[rows], good)  # embedded again, not the zeros


def test_a_bm25_array_of_the_wrong_dtype_keeps_the_server_not_ready(fake_settings: Settings):
    build_index(fake_settings, embedder=FakeEmbedder())
    path = current_build(fake_settings.index_dir) / BM25 / "data.csc.index.npy"
    data = np.load(path)
    np.save(path, data.astype(np.float64)[: len(data) // 2])  # another dtype, same size
    with pytest.raises(IndexCorrupt):
        load_index(fake_settings.index_dir)
    app = create_app(fake_settings, load=False)
    app.state.rag.embedder = FakeEmbedder()
    app.state.rag.load()
    with TestClient(app) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and "rag index" in ready.json()["problem"]
        assert client.get("/query", params={"q": "x"}).status_code == 503


def test_ready_means_the_index_answers(fake_settings: Settings, monkeypatch):
    build_index(fake_settings, embedder=FakeEmbedder())

    def broken(self, question):  # an array that loads but fails when used
        raise ValueError("buffer is smaller than requested size")

    monkeypatch.setattr("rag.lexical.LexicalIndex.scores", broken)
    with pytest.raises(IndexCorrupt, match="cannot answer"):
        Pipeline.open(fake_settings, embedder=FakeEmbedder())


def test_abandoned_model_exports_are_removed(fake_settings: Settings):
    encoders = fake_settings.index_dir / ENCODERS
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    abandoned = encoders / f"0123456789ab.tmp{dead.stdout.strip()}"
    running = encoders / f"0123456789ab.tmp{os.getpid()}"
    for folder in (abandoned, running):
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"\x00" * 1024)
    build_index(fake_settings, embedder=FakeEmbedder())
    assert not abandoned.exists() and running.exists()


class _Crashing(FakeEmbedder):
    """Dies (as a kill would) after embedding `limit` texts."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def embed_batch(self, texts, kind):
        if kind == "document" and len(self.embedded) + len(texts) > self.limit:
            raise KeyboardInterrupt
        return super().embed_batch(texts, kind)


def test_an_interrupted_build_resumes_where_it_stopped(fake_settings: Settings, monkeypatch):
    monkeypatch.setattr(rag.vector_sources, "COMMIT_TEXTS", 100)
    first = _Crashing(limit=450)
    with pytest.raises(KeyboardInterrupt):
        build_index(fake_settings, embedder=first)
    assert VectorCache(fake_settings.index_dir).stats()[0] == 400  # 4 whole groups of 100
    again = FakeEmbedder()
    report = build_index(fake_settings, embedder=again)
    assert report.cached == 400
    whole = FakeEmbedder()
    elsewhere = fake_settings.model_copy(update={"index_dir": fake_settings.index_dir / "x"})
    build_index(elsewhere, embedder=whole)
    assert len(again.embedded) == len(whole.embedded) - 400
    index = load_index(fake_settings.index_dir)
    assert np.allclose(index.vectors, load_index(elsewhere.index_dir).vectors)


def test_switching_settings_back_embeds_nothing(fake_settings: Settings):
    """A -> B -> A: the third build finds every vector in the cache."""
    b = fake_settings.model_copy(update={"chunk_size": 400, "chunk_overlap": 100})
    build_index(fake_settings, embedder=FakeEmbedder())
    build_index(b, embedder=FakeEmbedder())
    third = FakeEmbedder()
    report = build_index(fake_settings, embedder=third)
    assert third.embedded == [] and report.embedded == 0 and report.cached > 0


def test_the_vector_cache_is_bounded(fake_settings: Settings):
    build_index(fake_settings, embedder=FakeEmbedder())
    cache = VectorCache(fake_settings.index_dir)
    count, _ = cache.stats()
    dropped = cache.prune(max_bytes=(count // 2) * (32 * 4 + 100))
    assert dropped == count - count // 2 and cache.stats()[0] == count // 2
    cache.clear()
    assert not (fake_settings.index_dir / CACHE_FILE).exists()
    none_kept = fake_settings.model_copy(update={"vector_cache_mb": 0})
    build_index(none_kept, embedder=FakeEmbedder(), rebuild=True)
    assert VectorCache(fake_settings.index_dir).stats()[0] == 0


# Resources


def test_spans_read_from_checkpoints_equal_slices_of_the_whole_text(tmp_path: Path):
    from rag.file_text import char_checkpoints, decode_document_bytes

    rng = np.random.default_rng(7)
    pieces = ["plain words ", "café ", "Ωμέγα ", "😀 ", "\r\n", "bad \xff byte "]
    text = "".join(rng.choice(pieces, size=60_000))
    data = text.encode("utf-8", "surrogateescape").replace(b"\\xff", b"\xff")
    data = data.replace("\xff".encode(), b"\xff\xfe")  # invalid UTF-8 bytes too
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "big.txt").write_bytes(data)
    whole = decode_document_bytes(data)
    points = char_checkpoints(data, every=4096)
    assert len(points) > 50
    from rag.manifest import DocumentRecord

    st = (corpus / "big.txt").stat()
    record = DocumentRecord(
        doc_id="big.txt",
        title="t",
        sha256=__import__("hashlib").sha256(data).hexdigest(),
        size=len(data),
        mtime_ns=st.st_mtime_ns,
        chunks=1,
        chars=len(whole),
        checkpoints=points,
    )
    for _ in range(200):
        start = int(rng.integers(0, len(whole) - 1))
        end = int(rng.integers(start + 1, min(len(whole), start + 5000) + 1))
        span = read_cited_span(corpus, record, start, end, context=50)
        assert span.text == whole[start:end] and not span.stale
        assert span.before == whole[max(0, start - 50) : start]
        assert span.after == whole[end : end + 50]
        assert span.line_start == whole.count("\n", 0, start) + 1
        assert span.line_end == whole.count("\n", 0, end - 1) + 1


def test_staleness_is_decided_by_size_and_mtime_and_hashed_once(
    fake_settings: Settings, monkeypatch
):
    import rag.file_text

    build_index(fake_settings, embedder=FakeEmbedder())
    record = indexed_records(fake_settings.index_dir)[DOC]
    calls = []
    real = rag.file_text._hash_and_count
    monkeypatch.setattr(rag.file_text, "_hash_and_count", lambda fh: calls.append(1) or real(fh))
    assert not read_cited_span(fake_settings.corpus_dir, record, 0, 10).stale
    assert calls == []  # size and mtime as indexed: no hashing
    os.utime(fake_settings.corpus_dir / DOC, ns=(1, 1))  # touched, same content
    for _ in range(5):
        assert not read_cited_span(fake_settings.corpus_dir, record, 0, 10).stale
    assert calls == [1]  # hashed once for this change
    (fake_settings.corpus_dir / DOC).write_text("Rewritten entirely.\n", "utf-8")
    span = read_cited_span(fake_settings.corpus_dir, record, 0, 9)
    assert span.stale and span.text == "Rewritten"


def test_thousands_of_copies_stay_linear():
    groups = DuplicateGroups(["the same passage"] * 3000 + ["another one"])
    assert len(groups.members) == 1 and groups.rows == 3000
    assert len(groups.copies_of(0)) == 2999 and len(groups.copies_of(3000)) == 0


def test_hits_cap_also_in_and_count_the_rest(fake_settings: Settings):
    text = (fake_settings.corpus_dir / DOC).read_text("utf-8")
    for i in range(40):
        (fake_settings.corpus_dir / f"mirror-{i:02d}.txt").write_text(text, "utf-8")
    build_index(fake_settings, embedder=FakeEmbedder())
    pipeline = Pipeline.open(fake_settings, embedder=FakeEmbedder())
    mirrored = [DOC, *(f"mirror-{i:02d}.txt" for i in range(40))]
    hit = pipeline.ask("What is this about?", k=3, mode="dense", doc_ids=mirrored).hits[0]
    assert len(hit.also_in) == MAX_ALSO_IN
    assert len(hit.also_in) + hit.also_in_more == 40
    assert len(json.dumps(hit.model_dump())) < 20_000


def test_show_and_ask_agree_on_what_changed(fake_settings: Settings):
    """One definition of "changed since indexing" serves cited spans and rebuild checks."""
    from rag.freshness import index_is_current
    from rag.store import live_manifest

    build_index(fake_settings, embedder=FakeEmbedder())
    record = indexed_records(fake_settings.index_dir)[DOC]
    path = fake_settings.corpus_dir / DOC

    def views() -> tuple[bool, bool]:
        stale = read_cited_span(fake_settings.corpus_dir, record, 0, 10).stale
        current = index_is_current(fake_settings, live_manifest(fake_settings.index_dir))
        return stale, current

    assert views() == (False, True)
    os.utime(path, ns=(5, 5))  # touched: same content
    assert views() == (False, True)
    path.write_text(path.read_text("utf-8") + "\nOne more line.\n", "utf-8")
    assert views() == (True, False)


def test_a_build_in_use_is_not_removed_by_later_publishes(fake_settings: Settings):
    import gc

    build_index(fake_settings, embedder=FakeEmbedder())
    reader = Pipeline.open(fake_settings, embedder=FakeEmbedder())
    held = reader.index.path
    for n in range(3):  # three more builds: the held one is third-newest and older
        (fake_settings.corpus_dir / f"new-{n}.txt").write_text(f"Note {n} on rain.\n", "utf-8")
        build_index(fake_settings, embedder=FakeEmbedder())
    assert held.exists() and held != current_build(fake_settings.index_dir)
    assert reader.ask("Montazeri audio tape", k=3).hits  # still answers from its build
    del reader
    gc.collect()
    (fake_settings.corpus_dir / "new-last.txt").write_text("A last note.\n", "utf-8")
    build_index(fake_settings, embedder=FakeEmbedder())
    assert not held.exists()  # released: removed by the next publish
    assert len(_builds(fake_settings.index_dir)) == 2
