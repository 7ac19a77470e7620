"""The `rag` command, driven for real: exit codes, messages, JSON that cites exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.settings import load_settings

from .conftest import SEEDS

runner = CliRunner()


def rag(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env, prog_name="rag")


def test_ask_json_in_a_real_process(seed_index, tmp_path: Path):
    """The installed console script, as a user runs it, on an index built beforehand."""
    exe = Path(sys.executable).with_name("rag")
    result = subprocess.run(
        [str(exe), "ask", "How far is Camp Ashraf from Baghdad?", "-k", "3", "--json"],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "RAG_CORPUS_DIR": str(SEEDS),
            "RAG_INDEX_DIR": str(seed_index.index_dir),
        },
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert set(response) >= {"question", "hits", "answer", "took_ms"}
    assert len(response["hits"]) == 3
    top = response["hits"][0]
    assert top["doc_id"] == "003_bddc2f2a3ccead0c.txt" and "77 kilometers" in top["text"]
    for hit in response["hits"]:
        text = (SEEDS / hit["doc_id"]).read_bytes().decode("utf-8")
        assert text[hit["start_char"] : hit["end_char"]] == hit["text"]
        assert hit["chunk_id"].startswith(hit["doc_id"] + "#")


def test_ask_builds_the_index_on_first_use(
    real_embedder, corpus: Path, tmp_path: Path, monkeypatch
):
    monkeypatch.setattr("rag.embedding.SentenceTransformerEmbedder", lambda *_: real_embedder)
    index_dir = tmp_path / "fresh-index"
    env = {"RAG_CORPUS_DIR": str(corpus), "RAG_INDEX_DIR": str(index_dir)}
    result = rag("ask", "Where did supporters gather in Sweden?", "-k", "2", env=env)
    assert result.exit_code == 0, result.output
    assert "documents: 5 added" in result.stderr
    assert "002_d2ed503e188a2ca5.txt" in result.stdout
    # Human output: numbered passages with citation and section, within 80 columns.
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Answer (") and "002_d2ed503e188a2ca5.txt  chars " in lines[0]
    first = next(line for line in lines if line.startswith("1. "))
    assert "chars " in first and "lines " in first
    assert any(line.strip().startswith("§ ") for line in lines)
    assert max(len(line) for line in lines) <= 100
    # A changed corpus is picked up by the next question, incrementally.
    (corpus / "005_new.txt").write_text(
        "Lighthouse News\n\nThe old lighthouse on the northern cape was repainted red in May.\n",
        encoding="utf-8",
    )
    result = rag("ask", "What colour was the lighthouse painted?", "-k", "1", env=env)
    assert result.exit_code == 0, result.output
    assert "1 added" in result.stderr and "(1 embedded" in result.stderr
    assert "005_new.txt" in result.stdout


def test_an_answer_that_is_a_release_heading_shows_what_it_rests_on(release_notes_index):
    settings = release_notes_index
    env = {"RAG_CORPUS_DIR": str(settings.corpus_dir), "RAG_INDEX_DIR": str(settings.index_dir)}
    result = rag("ask", "Which Uvicorn version dropped the logger= config setting?", env=env)
    assert result.exit_code == 0, result.output
    answer, _, passages = result.stdout.partition("under it:")
    assert "0.10.0 (October 29, 2019)" in answer
    assert "- Dropped logger= config setting." in passages.split("\n\n")[0]
    assert "[[- Dropped logger= config setting.]]" in passages  # marked in its passage


def test_index_docs_and_show(seed_index):
    env = {"RAG_CORPUS_DIR": str(SEEDS), "RAG_INDEX_DIR": str(seed_index.index_dir)}
    result = rag("index", env=env)
    assert result.exit_code == 0 and "up to date" in result.stderr
    result = rag("docs", "--json", env=env)
    docs = json.loads(result.stdout)
    assert [d["doc_id"] for d in docs] == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert all(d["chunks"] > 0 and len(d["sha256"]) == 64 for d in docs)
    listed = rag("docs", env=env).stdout.splitlines()  # piped: whole lines, not cut at 80
    assert len(listed) == len(docs)
    assert all(line.endswith(d["title"]) for line, d in zip(listed, docs, strict=True))
    text = (SEEDS / "003_bddc2f2a3ccead0c.txt").read_text(encoding="utf-8")
    start = text.index("Camp Ashraf, situated")
    end = start + len("Camp Ashraf, situated 77 kilometers north of Baghdad")
    result = rag("show", f"003_bddc2f2a3ccead0c.txt:{start}-{end}", "--context", "30", env=env)
    assert result.exit_code == 0, result.output
    assert "[[Camp Ashraf, situated 77 kilometers north of Baghdad]]" in result.stdout
    assert f"chars {start}-{end}" in result.stdout and "lines 579-579" in result.stdout


def test_show_warns_when_the_file_changed(fake_settings, fake_embedder):
    from rag.build import build_index

    notes = fake_settings.corpus_dir / "notes.md"
    notes.write_text("# Notes\n\nThe lens is polished every 14 days.\n", "utf-8")
    build_index(fake_settings, embedder=fake_embedder)
    doc = fake_settings.corpus_dir / "000_3adcc106da112fc4.txt"
    doc.write_text(doc.read_text(encoding="utf-8").replace("Amnesty", "AMNESTY"), "utf-8")
    env = {"RAG_INDEX_DIR": str(fake_settings.index_dir)}  # the corpus as indexed
    result = rag("show", "000_3adcc106da112fc4.txt:100-140", env=env)
    assert result.exit_code == 0, result.output
    assert "changed since it was indexed; this span may not be the cited text" in result.stderr
    # Another format is shown from the text extracted at index time: the cited text.
    notes.write_text("# Notes\n\nThe lens is polished every 21 days.\n", "utf-8")
    result = rag("show", "notes.md", env=env)
    assert result.exit_code == 0, result.output
    assert "14 days" in result.stdout
    assert "this is the text as indexed, not as the file is now" in result.stderr


def test_an_index_is_used_as_built(fake_settings, fake_embedder, monkeypatch):
    """Built with chunks of 400 into its own folder, the index answers `ask` and `serve`
    with its own settings: nothing is rebuilt, and contradicting it is one clear line."""
    monkeypatch.setattr("rag.embedding.SentenceTransformerEmbedder", lambda *_: fake_embedder)
    from rag.params import settings_as_built
    from rag.store import current_build, live_manifest

    corpus, idx2 = fake_settings.corpus_dir, fake_settings.index_dir.parent / "idx2"
    built = rag(
        "index",
        "--corpus",
        str(corpus),
        "--index-dir",
        str(idx2),
        "--chunk-size",
        "400",
        "--model",
        "fake",
    )
    assert built.exit_code == 0, built.output
    build = current_build(idx2)
    assert live_manifest(idx2).chunk_size == 400
    again = rag("index", "--index-dir", str(idx2))  # no flags: kept as built
    assert again.exit_code == 0 and "up to date" in again.stderr, again.output
    as_built = settings_as_built(load_settings(index_dir=idx2))
    assert (as_built.chunk_size, as_built.model, as_built.corpus_dir) == (400, "fake", corpus)
    asked = rag("ask", "Montazeri tape", "--index-dir", str(idx2), "--json")
    assert asked.exit_code == 0, asked.output
    assert current_build(idx2) == build  # answered from the index as built: no rebuild
    wrong = rag("ask", "x", "--index-dir", str(idx2), env={"RAG_CHUNK_SIZE": "800"})
    assert wrong.exit_code == 2 and "chunk_size 400 (given 800)" in wrong.stderr
    from api.state import ServerState  # what `rag serve --index-dir idx2` loads

    state = ServerState(load_settings(index_dir=idx2), embedder=fake_embedder)
    state.load()
    assert state.pipeline is not None, state.problem
    assert state.pipeline.settings.chunk_size == 400 and state.pipeline.index.path == build
    changed = rag("index", "--index-dir", str(idx2), "--chunk-size", "500")
    assert changed.exit_code == 0 and "rebuilding with chunk_size 500 (was 400)" in changed.stderr
    assert live_manifest(idx2).chunk_size == 500


def test_another_corpus_gets_its_own_index(fake_settings, fake_embedder, monkeypatch):
    monkeypatch.setattr("rag.embedding.SentenceTransformerEmbedder", lambda *_: fake_embedder)
    other = fake_settings.corpus_dir.parent / "other"
    other.mkdir()
    (other / "note.txt").write_text("A note about the weather in Lisbon today.\n", "utf-8")
    seeds = rag("index", "--corpus", str(fake_settings.corpus_dir), "--model", "fake")
    mine = rag("index", "--corpus", str(other), "--model", "fake")
    assert seeds.exit_code == 0 and mine.exit_code == 0, seeds.output + mine.output
    first = load_settings(corpus_dir=fake_settings.corpus_dir).index_dir
    second = load_settings(corpus_dir=other).index_dir
    assert first != second and str(second).startswith("index/corpora/other-")
    assert len(settings_docs(first)) == 5 and settings_docs(second) == ["note.txt"]


def settings_docs(index_dir: Path) -> list[str]:
    from rag.store import indexed_records

    return sorted(indexed_records(index_dir))


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["ask", "   "], {}, "the question is empty"),
        (["ask", "x" * 3000], {}, "over the limit"),
        (["ask", "hello", "-k", "0"], {}, "greater than or equal to 1"),
        (
            ["ask", "hello", "--corpus", "/nonexistent/corpus", "--index-dir", "/nonexistent/ix"],
            {},
            "no corpus folder",
        ),
        (["docs", "--index-dir", "/nonexistent/index"], {}, "run `rag index`"),
        (["index", "--corpus", "/nonexistent/corpus"], {}, "corpus folder not found"),
        (["index", "--chunk-size", "100", "--chunk-overlap", "500"], {}, "must be smaller"),
        (["ask", "hello"], {"RAG_CHUNK_SIZE": "lots"}, "chunk_size"),
        (["show", "000_3adcc106da112fc4.txt"], {}, "run `rag index`"),
        (["frobnicate"], {}, "No such command"),
        (["ask"], {}, "give either a QUESTION or --questions FILE"),
        (["ask", "hi", "--questions", "q.txt"], {}, "give either"),
        (["ask", "--questions", "/nonexistent/q.txt"], {}, "cannot read questions"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(args, env, message):
    result = rag(*args, env={"RAG_CORPUS_DIR": str(SEEDS), **env})
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output + result.stderr
    if result.stderr.startswith("error:"):
        assert result.stderr.count("\n") == 1  # one line


@pytest.mark.parametrize(
    "ref, message",
    [
        ("../../etc/passwd", "no document"),
        ("000_3adcc106da112fc4.txt:50-10", "does not fit"),
        ("000_3adcc106da112fc4.txt:0-999999", "does not fit"),
        ("", "give a document id"),
        ("   ", "give a document id"),
        ("nope.txt:1-2", "no document"),
    ],
)
def test_show_refuses_bad_references_in_one_line(seed_index, ref: str, message: str):
    env = {"RAG_CORPUS_DIR": str(SEEDS), "RAG_INDEX_DIR": str(seed_index.index_dir)}
    result = rag("show", ref, env=env)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output + result.stderr


def test_help_shows_examples():
    for command in ("index", "ask", "docs", "show"):
        result = rag(command, "--help")
        assert result.exit_code == 0 and "Example" in result.stdout


def test_ask_many_questions_from_a_file(seed_index, real_embedder, monkeypatch, tmp_path):
    monkeypatch.setattr("rag.embedding.SentenceTransformerEmbedder", lambda *_: real_embedder)
    questions = tmp_path / "q.txt"
    questions.write_text(
        "How far is Camp Ashraf from Baghdad?\n\n"
        '{"id": "x", "question": "Who leaked the Montazeri tape?"}\n'
        "Who designed the Eiffel Tower?\n",
        encoding="utf-8",
    )
    env = {"RAG_CORPUS_DIR": str(SEEDS), "RAG_INDEX_DIR": str(seed_index.index_dir)}
    result = rag("ask", "--questions", str(questions), "--json", "-k", "2", env=env)
    assert result.exit_code == 0, result.output
    responses = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["question"] for r in responses] == [
        "How far is Camp Ashraf from Baghdad?",
        "Who leaked the Montazeri tape?",
        "Who designed the Eiffel Tower?",
    ]
    assert all(len(r["hits"]) == 2 for r in responses)
    assert responses[0]["answerable"] and not responses[2]["answerable"]


def test_progress_is_logged_when_stderr_is_not_a_terminal(
    fake_settings, fake_embedder, monkeypatch
):
    monkeypatch.setattr("rag.embedding.SentenceTransformerEmbedder", lambda *_: fake_embedder)
    result = rag(
        "index",
        "--corpus",
        str(fake_settings.corpus_dir),
        "--index-dir",
        str(fake_settings.index_dir),
        "--model",
        "fake",
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("embedding: ")]
    assert len(lines) >= 5 and "(100%)" in lines[-1] and "elapsed" in lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "run", "--questions", "/nonexistent.jsonl"], "cannot read question file"),
        (["eval", "beir", "/nonexistent-beir"], "BEIR"),
        (["eval", "sweep", "--sizes", "big"], "comma-separated"),
    ],
)
def test_eval_subcommands_fail_in_one_line(args, message):
    result = rag(*args, env={"RAG_CORPUS_DIR": str(SEEDS)})
    assert result.exit_code == 2, result.output
    assert message in result.stderr or message in result.output
    assert "Traceback" not in result.output


def test_eval_lists_its_subcommands():
    result = rag("eval", "--help")
    assert result.exit_code == 0
    assert all(name in result.stdout for name in ("run", "beir", "sweep", "calibrate"))


def test_the_summary_counts_skipped_files_in_words():
    from types import SimpleNamespace

    from rag.cli.common import summary_lines

    report = SimpleNamespace(
        formats={"text": 2},
        skipped_reasons={
            "empty file": 3,
            "binary file": 1,
            "encrypted": 2,
            "link outside the corpus": 2,
            "symlink loop": 1,
        },
        unsupported={},
    )
    assert summary_lines(report)[1] == (
        "skipped: 1 binary file, 3 empty files, 2 encrypted, 2 links outside the corpus, "
        "1 symlink loop"
    )
