"""Loading real files, bad ones included: none of them stops a build."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from rag.corpus import list_document_files, load_corpus, read_document_text, resolve_doc_path
from rag.errors import CorpusNotFound, DocumentNotFound

from .conftest import SEEDS


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    root = tmp_path / "messy"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_text("Plain text.\r\nWindows line ends stay.\n", encoding="utf-8")
    (root / "nested" / "b.md").write_text("# Title\n\nSome markdown.\n", encoding="utf-8")
    (root / "nested" / "deeper" / "c.txt").write_text("Deep file.\n", encoding="utf-8")
    (root / "empty.txt").write_bytes(b"")
    (root / "blank.txt").write_bytes(b"  \n\n \t\n")
    (root / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (root / "latin1.txt").write_bytes("Café au lait, crème brûlée.\n".encode("latin-1"))
    (root / "latin1.md").write_bytes("# Résumé\n\nCafé au lait.\n".encode("latin-1"))
    (root / "windows.txt").write_bytes("Notes saved as Unicode.\n".encode("utf-16"))  # BOM
    (root / "notes.pdf").write_bytes(b"%PDF-1.4 not a text document")  # a broken PDF
    (root / "notes.odt").write_bytes(b"PK\x03\x04 an extension rag does not read")
    (root / ".hidden.txt").write_text("secret\n", encoding="utf-8")
    os.symlink(root, root / "nested" / "loop")  # a folder that contains itself
    return root


def test_loader_skips_bad_files_with_one_line_warnings(messy: Path, caplog):
    with caplog.at_level(logging.WARNING, logger="rag"):
        docs = load_corpus(messy)
    ids = [d.doc_id for d in docs]
    assert ids == ["a.txt", "latin1.md", "latin1.txt", "nested/b.md", "nested/deeper/c.txt"]
    messages = [r.getMessage() for r in caplog.records]
    assert all("\n" not in m for m in messages)
    assert any("empty.txt" in m and "empty" in m for m in messages)
    assert any("blank.txt" in m for m in messages)
    assert any("image.txt" in m and "binary" in m for m in messages)
    assert any("latin1.txt" in m and "UTF-8" in m for m in messages)
    assert any("latin1.md is not valid UTF-8" in m for m in messages)  # Markdown too
    assert "skipped windows.txt: UTF-16 text (re-save it as UTF-8)" in messages
    assert any("symlink loop" in m for m in messages)
    assert any("notes.pdf" in m and "broken" in m for m in messages)


def test_text_is_exactly_as_on_disk(messy: Path):
    docs = {d.doc_id: d for d in load_corpus(messy)}
    assert docs["a.txt"].text == "Plain text.\r\nWindows line ends stay.\n"  # newlines untouched
    latin = docs["latin1.txt"].text
    assert latin.startswith("Caf\ufffd au lait")  # replaced, not guessed
    assert latin == (messy / "latin1.txt").read_bytes().decode("utf-8", errors="replace")


def test_seed_ids_are_file_names_in_stable_order():
    ids = [s.doc_id for s in list_document_files(SEEDS)]
    assert ids == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert len(ids) == 5


def test_missing_corpus_folder(tmp_path: Path):
    with pytest.raises(CorpusNotFound, match="RAG_CORPUS_DIR"):
        load_corpus(tmp_path / "nope")
    (tmp_path / "a.txt").write_text("A file, not a folder.\n", encoding="utf-8")
    with pytest.raises(CorpusNotFound, match="is a file: pass the folder that holds it"):
        load_corpus(tmp_path / "a.txt")


@pytest.mark.parametrize(
    "doc_id",
    [
        "../secret.txt",
        "/etc/passwd",
        "nested/../../secret.txt",
        "",
        "nested//b.md",
        ".hidden.txt",
        "nested\\b.md",
        "a.txt\x00",
        "notes.odt",
        "missing.txt",
    ],
)
def test_doc_ids_cannot_leave_the_corpus(messy: Path, doc_id: str):
    (messy.parent / "secret.txt").write_text("outside\n", encoding="utf-8")
    with pytest.raises(DocumentNotFound):
        resolve_doc_path(messy, doc_id)


def test_read_document_text_of_nested_id(messy: Path):
    text, sha = read_document_text(messy, "nested/b.md")
    assert text.startswith("# Title") and len(sha) == 64
