"""Reading in worker processes and the extraction cache, on the real files of
tests/data/realdocs: the same documents in the same order as reading in-process, a worker
killed mid-read loses nothing, unchanged files are not extracted again, and a PDF is read
from the open file."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

import rag.corpus
from rag.build import build_index
from rag.corpus import Document, Skipped, list_document_files, read_document
from rag.extraction_cache import ExtractionCache
from rag.reading import read_documents
from rag.settings import load_settings

from .conftest import FakeEmbedder

DATA = Path(__file__).parent / "data" / "realdocs"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    shutil.copytree(DATA, folder)
    (folder / "notes.txt").write_text("A plain note about lakes and ducks.\n", encoding="utf-8")
    return folder


def _summary(items: list[Document | Skipped]) -> list[tuple]:
    return [
        (d.doc_id, d.reason) if isinstance(d, Skipped) else (d.doc_id, d.sha256, d.text, d.layout)
        for d in items
    ]


def test_workers_give_what_reading_in_process_gives(folder: Path):
    stamps = list_document_files(folder)
    alone = list(read_documents(stamps, folder, workers=1))
    pooled = list(read_documents(stamps, folder, workers=2))
    assert _summary(pooled) == _summary(alone)
    assert [d.doc_id for d in pooled] == [s.doc_id for s in stamps]
    assert {d.reason for d in pooled if isinstance(d, Skipped)} == {"encrypted", "no text layer"}


def test_a_worker_killed_mid_read_loses_no_document(folder: Path, caplog):
    import multiprocessing

    # Plain text is read in this process: "aaa.txt" comes first, while the workers are
    # still starting, so the kill lands before any of them has answered.
    (folder / "aaa.txt").write_text("The first note, about swans.\n", encoding="utf-8")
    stamps = list_document_files(folder)
    expected = _summary(list(read_documents(stamps, folder, workers=1)))
    got = []
    for item in read_documents(stamps, folder, workers=2):
        if not got:
            children = multiprocessing.active_children()
            assert children
            os.kill(children[0].pid, signal.SIGKILL)
        got.append(item)
    assert "a reader process died" in caplog.text
    assert _summary(got) == expected


def test_unchanged_files_are_not_extracted_again(folder: Path, tmp_path, monkeypatch):
    settings = load_settings(
        corpus_dir=folder, index_dir=tmp_path / "idx", model="fake", read_workers=1
    )
    build_index(settings, embedder=FakeEmbedder())
    cache = ExtractionCache(settings.index_dir)
    entries = sorted(p.name for p in cache.folder.iterdir())
    # Every file a reader read (skipped ones too) has its entry; plain text has none.
    readable = [s for s in list_document_files(folder) if s.path.suffix != ".txt"]
    assert len(entries) == len(readable)

    def no_extraction(*args, **kwargs):
        raise AssertionError("extracted again")

    monkeypatch.setattr(rag.corpus, "extract", no_extraction)
    (folder / "notes.txt").write_text("Another note, about geese.\n", encoding="utf-8")
    report = build_index(settings, embedder=FakeEmbedder())
    assert report.changed == ["notes.txt"]
    assert report.skipped_reasons == {"encrypted": 1, "no text layer": 1}

    # A removed file's entry goes with it.
    gone = next(folder.glob("docx/*.docx"))
    gone.unlink()
    build_index(settings, embedder=FakeEmbedder())
    assert len(list(cache.folder.iterdir())) == len(entries) - 1


def test_a_damaged_cache_entry_is_read_again(folder: Path, tmp_path):
    index_dir = tmp_path / "idx"
    cache = ExtractionCache(index_dir)
    stamp = next(s for s in list_document_files(folder) if s.path.suffix == ".md")
    first = read_document(stamp, folder, cache)
    assert isinstance(first, Document)
    (entry,) = cache.folder.iterdir()
    entry.write_bytes(b"not gzip")
    again = read_document(stamp, folder, cache)
    assert isinstance(again, Document) and again.text == first.text
    assert cache.get("markdown", first.sha256) is not None  # written again
    (entry,) = cache.folder.iterdir()
    with gzip.open(entry, "wt", encoding="utf-8") as fh:
        json.dump({"text": "x"}, fh)  # valid, but not an entry: read the file again
    assert read_document(stamp, folder, cache).text == first.text


def test_the_same_bytes_under_two_readers_are_two_entries(tmp_path: Path):
    folder = tmp_path / "docs"
    folder.mkdir()
    page = b"<html><head><title>T</title></head><body><p>Hello world.</p></body></html>"
    (folder / "a.html").write_bytes(page)
    (folder / "b.md").write_bytes(page)
    cache = ExtractionCache(tmp_path / "idx")
    first = {s.doc_id: read_document(s, folder, cache) for s in list_document_files(folder)}
    again = {s.doc_id: read_document(s, folder, cache) for s in list_document_files(folder)}
    alone = {s.doc_id: read_document(s, folder) for s in list_document_files(folder)}
    for doc_id in alone:
        assert _summary([first[doc_id]]) == _summary([again[doc_id]]) == _summary([alone[doc_id]])


def test_a_pdf_is_read_from_the_open_file(folder: Path, monkeypatch):
    given: dict[str, type] = {}
    real = rag.corpus.extract

    def spy(path, data):
        given[path.name] = type(data)
        return real(path, data)

    monkeypatch.setattr(rag.corpus, "extract", spy)
    for stamp in list_document_files(folder):
        read_document(stamp, folder)
    pdfs = {name: kind for name, kind in given.items() if name.endswith(".pdf")}
    assert len(pdfs) == 3 and bytes not in pdfs.values()  # a file object: pages on demand
    assert given["background-tasks.md"] is bytes


def test_a_new_reader_version_extracts_and_indexes_again(folder: Path, tmp_path, monkeypatch):
    import rag.build
    import rag.extraction_cache
    import rag.freshness

    settings = load_settings(
        corpus_dir=folder, index_dir=tmp_path / "idx", model="fake", read_workers=1
    )
    build_index(settings, embedder=FakeEmbedder())
    assert build_index(settings, embedder=FakeEmbedder()).up_to_date
    for module in (rag.build, rag.extraction_cache, rag.freshness):
        monkeypatch.setattr(module, "READER_VERSION", 99)
    report = build_index(settings, embedder=FakeEmbedder())
    assert not report.up_to_date
    names = [p.name for p in ExtractionCache(settings.index_dir).folder.iterdir()]
    assert names and all(name.endswith("-v99.json.gz") for name in names)
