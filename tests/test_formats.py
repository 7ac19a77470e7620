"""A mixed folder of real documents (Markdown, HTML, PDF, Word, plain text, files rag does
not read) indexed end to end: the summary, citations that slice back exactly from the
stored extracted text for every format, pages on PDF citations, skipped files and why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.build import build_index
from rag.cli import app
from rag.pipeline import Pipeline
from rag.settings import load_settings
from rag.sources import read_cited_span
from rag.store import load_index

from .conftest import FakeEmbedder

DATA = Path(__file__).parent / "data" / "realdocs"


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    folder = tmp_path / "mixed"
    shutil.copytree(DATA, folder)
    (folder / "SOURCES.md").unlink()
    (folder / "notes.txt").write_text("A plain note about lakes and ducks.\n", encoding="utf-8")
    (folder / "draft.odt").write_bytes(b"PK\x03\x04 a format rag does not read")
    return folder


def test_mixed_folder_summary_and_exact_citations_for_every_format(mixed: Path, tmp_path):
    settings = load_settings(corpus_dir=mixed, index_dir=tmp_path / "idx", model="fake")
    report = build_index(settings, embedder=FakeEmbedder())
    assert report.formats == {"markdown": 3, "html": 2, "pdf": 1, "docx": 2, "text": 1}
    assert report.skipped_reasons == {"encrypted": 1, "no text layer": 1}
    assert report.unsupported == {".odt": 1}
    index = load_index(settings.index_dir)
    formats = {record.doc_id: record.format for record in index.manifest.documents}
    checked: set[str] = set()
    for chunk in index.chunks:
        record = index.documents[chunk.doc_id]
        span = read_cited_span(mixed, record, chunk.start, chunk.end, build=index.path)
        assert span.text == chunk.text, chunk.chunk_id
        assert not span.stale
        checked.add(formats[chunk.doc_id])
    assert checked == {"markdown", "html", "pdf", "docx", "text"}
    assert (index.path / "texts").is_dir()  # the extracted texts live with the build


def test_pdf_citations_carry_their_page_and_stay_readable_when_the_file_changes(
    mixed: Path, tmp_path
):
    settings = load_settings(corpus_dir=mixed, index_dir=tmp_path / "idx", model="fake")
    build_index(settings, embedder=FakeEmbedder())
    pipeline = Pipeline(settings, load_index(settings.index_dir), FakeEmbedder())
    response = pipeline.ask("Christopher Latham Sholes typewriter patent", k=3, mode="bm25")
    hit = response.hits[0]
    assert hit.doc_id == "pdf/multi_page.pdf" and hit.page == 1
    assert "Sholes" in hit.text
    (mixed / "pdf" / "multi_page.pdf").write_bytes(b"%PDF-1.4 replaced")  # changed on disk
    record = pipeline.index.documents[hit.doc_id]
    span = read_cited_span(mixed, record, hit.start_char, hit.end_char, build=pipeline.index.path)
    assert span.stale and span.text == hit.text  # the text as indexed, flagged stale


def test_a_pdf_passage_across_a_page_break_cites_both_pages(mixed: Path, tmp_path, monkeypatch):
    settings = load_settings(corpus_dir=mixed, index_dir=tmp_path / "idx", model="fake")
    build_index(settings, embedder=FakeEmbedder())
    index = load_index(settings.index_dir)
    record = index.documents["pdf/multi_page.pdf"]
    for chunk in (c for c in index.chunks if c.doc_id == record.doc_id):
        pages = record.pages(chunk.start, chunk.end)
        crossed = [p for p in record.page_starts if chunk.start < p < chunk.end]
        assert pages["page_end"] - pages["page"] == len(crossed), chunk.chunk_id
    pipeline = Pipeline(settings, index, FakeEmbedder())
    # The multi_page.pdf passage on Microsoft Word's rise starts on page 1, ends on page 2.
    question = "Microsoft Word industry standard WordPerfect"
    hit = next(h for h in pipeline.ask(question, k=5, mode="bm25").hits if h.page_end != h.page)
    assert (hit.doc_id, hit.page, hit.page_end) == ("pdf/multi_page.pdf", 1, 2)
    assert record.page_starts[1] in range(hit.start_char, hit.end_char)
    monkeypatch.setattr("rag.embedding.SentenceTransformerEmbedder", lambda *_: FakeEmbedder())
    shown = CliRunner().invoke(
        app,
        [
            "ask",
            question,
            "--corpus",
            str(mixed),
            "--index-dir",
            str(settings.index_dir),
            "--mode",
            "bm25",
            "--model",
            "fake",
        ],
    )
    assert "pdf/multi_page.pdf  pages 1-2" in shown.stdout, shown.output


def test_rag_index_prints_the_summary(mixed: Path, tmp_path, monkeypatch):
    monkeypatch.setattr("rag.embedding.SentenceTransformerEmbedder", lambda *_: FakeEmbedder())
    result = CliRunner().invoke(
        app,
        ["index", "--corpus", str(mixed), "--index-dir", str(tmp_path / "i"), "--model", "fake"],
    )
    assert result.exit_code == 0, result.output
    assert "read: 2 docx, 2 html, 3 markdown, 1 pdf, 1 text" in result.stderr
    assert "skipped: 1 encrypted, 1 no text layer" in result.stderr
    assert "not read (extension not in RAG_EXTENSIONS): 1 .odt" in result.stderr
    # Asked for by name, a skipped file says why it has nothing indexed, in one line.
    where = ["--corpus", str(mixed), "--index-dir", str(tmp_path / "i")]
    shown = CliRunner().invoke(app, ["show", "pdf/linn.pdf", *where])
    assert shown.exit_code != 0 and "Traceback" not in shown.output
    assert "'pdf/linn.pdf' is not in the index: it was skipped when it was built" in shown.stderr
    assert "no text layer: 1 page(s), 0 characters of text" in shown.stderr
    assert "no text layer: no text layer" not in shown.stderr
    missing = CliRunner().invoke(app, ["show", "pdf/nothing.pdf", *where])
    assert "no document 'pdf/nothing.pdf' in the index" in missing.stderr
    listed = CliRunner().invoke(app, ["docs", "--json", *where])
    assert listed.exit_code == 0, listed.output
    assert "pdf/multi_page.pdf" in listed.stdout and "pdf/linn.pdf" not in listed.stdout


def test_the_extensions_setting_chooses_what_is_read(mixed: Path, tmp_path):
    settings = load_settings(
        corpus_dir=mixed, index_dir=tmp_path / "idx", model="fake", extensions=".txt,.md"
    )
    report = build_index(settings, embedder=FakeEmbedder())
    assert report.formats == {"markdown": 3, "text": 1}
    assert report.unsupported[".pdf"] == 3 and report.unsupported[".docx"] == 2
    with pytest.raises(Exception, match="cannot be read"):
        load_settings(extensions=".txt,.odt")


def test_api_serves_the_extracted_text_and_pages(mixed: Path, tmp_path):
    from fastapi.testclient import TestClient

    from api.main import create_app

    settings = load_settings(corpus_dir=mixed, index_dir=tmp_path / "idx", model="fake")
    build_index(settings, embedder=FakeEmbedder())
    app = create_app(settings, load=False)
    app.state.rag.embedder = FakeEmbedder()
    app.state.rag.pipeline = Pipeline(settings, load_index(settings.index_dir), FakeEmbedder())
    client = TestClient(app)
    body = client.post(
        "/query", json={"question": "Christopher Latham Sholes typewriter", "mode": "bm25"}
    ).json()
    hit = body["hits"][0]
    assert hit["doc_id"] == "pdf/multi_page.pdf" and hit["page"] == 1
    span = client.get(
        f"/documents/{hit['doc_id']}/text",
        params={"start": hit["start_char"], "end": hit["end_char"]},
    ).json()
    assert span["text"] == hit["text"] and span["stale"] is False
    assert (span["page"], span["page_end"]) == (hit["page"], hit["page_end"])
    second = load_index(settings.index_dir).documents["pdf/multi_page.pdf"].page_starts[1]
    across = client.get(
        "/documents/pdf/multi_page.pdf/text", params={"start": second - 20, "end": second + 20}
    ).json()
    assert (across["page"], across["page_end"]) == (1, 2)
    docs = {d["doc_id"]: d for d in client.get("/documents").json()}
    assert docs["pdf/multi_page.pdf"]["format"] == "pdf"
    assert docs["notes.txt"]["format"] == "text"
    skipped = client.get("/documents/pdf/libreoffice-writer-password.pdf/text")
    assert skipped.status_code == 404
    assert "skipped when it was built" in skipped.json()["detail"]
    assert "encrypted: the PDF needs a password to open" in skipped.json()["detail"]


def test_eval_reports_figures_by_format(mixed: Path, tmp_path):
    from rag.evaluation import evaluate_questions
    from rag.evaluation.report import write_markdown
    from rag.questions import Question

    settings = load_settings(corpus_dir=mixed, index_dir=tmp_path / "idx", model="fake")
    build_index(settings, embedder=FakeEmbedder())
    pipeline = Pipeline(settings, load_index(settings.index_dir), FakeEmbedder())
    questions = [
        Question(
            id="p1",
            question="Who patented the typewriter, Christopher Latham Sholes?",
            answers=["Christopher Latham Sholes"],
            doc_ids=["pdf/multi_page.pdf"],
            format="pdf",
        ),
        Question(
            id="d1",
            question="Calories per portion of grain for the duck",
            answers=["200"],
            doc_ids=["docx/word_sample.docx"],
            format="docx",
        ),
    ]
    report = evaluate_questions(pipeline, questions, modes=["bm25"], depth=10)
    assert report.modes[0].metrics["citations exact"] == 1.0
    write_markdown(report, tmp_path / "r.md")
    text = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "## By format" in text
    assert "| bm25   | docx     | 1" in text and "| bm25   | pdf      | 1" in text
