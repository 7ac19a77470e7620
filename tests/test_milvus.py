"""The Milvus backend against a real Milvus Lite (a folder under tmp_path, no mocks): the
build, incremental updates by content hash, answers equal to the local backend's, exact
citations, and one-line failures when Milvus cannot be reached or is lost while serving."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from rag.cli import app as cli_app
from rag.errors import DocumentNotFound
from rag.milvus_pipeline import build_milvus_index, ensure_milvus_index
from rag.milvus_store import Collections, connect
from rag.milvus_sync import sync_index
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.store import current_build, load_index

from .conftest import REPO, SEEDS

pytestmark = pytest.mark.slow

QUESTIONS = [
    json.loads(line)["question"]
    for line in (REPO / "eval" / "questions.jsonl").read_text().splitlines()[:8]
]


def on_milvus(settings: Settings, uri: Path) -> Settings:
    return settings.model_copy(update={"backend": "milvus", "milvus_uri": str(uri)})


def passage_count(settings: Settings) -> int:
    client = connect(settings)
    rows = client.query(
        Collections(settings.milvus_collection).passages, filter="", output_fields=["count(*)"]
    )
    return int(rows[0]["count(*)"])


@pytest.fixture(scope="module")
def milvus_seed(seed_index: Settings, real_embedder, tmp_path_factory) -> tuple[Settings, object]:
    """The seed index sent to a fresh Milvus Lite (the local build is reused, up to date)."""
    settings = on_milvus(seed_index, tmp_path_factory.mktemp("milvus") / "milvus.db")
    return settings, build_milvus_index(settings, embedder=real_embedder)


@pytest.fixture(scope="module")
def milvus_pipeline(milvus_seed, real_embedder) -> Pipeline:
    return Pipeline.open(milvus_seed[0], embedder=real_embedder)


def test_the_build_sends_every_passage_once(milvus_seed, seed_pipeline):
    settings, report = milvus_seed
    chunks = seed_pipeline.index.manifest.chunk_count
    assert report.milvus.added == sorted(seed_pipeline.index.documents)
    assert report.milvus.passages_written == chunks == passage_count(settings)
    assert report.milvus.spans_added == len(seed_pipeline.index.span_keys)
    # Nothing changed: ensure leaves Milvus alone.
    assert ensure_milvus_index(settings) is None


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_answers_equal_the_local_backend(milvus_pipeline, seed_pipeline, mode: str):
    for question in QUESTIONS:
        ours = milvus_pipeline.ask(question, k=5, mode=mode, explain=True)
        local = seed_pipeline.ask(question, k=5, mode=mode, explain=True)
        assert [h.chunk_id for h in ours.hits] == [h.chunk_id for h in local.hits], question
        for a, b in zip(ours.hits, local.hits, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-4)
            assert a.explain.bm25_rank == b.explain.bm25_rank
            assert a.explain.dense_rank == b.explain.dense_rank
            assert a.model_dump(exclude={"score", "explain"}) == b.model_dump(
                exclude={"score", "explain"}
            )
        assert (ours.answer is None) == (local.answer is None), question
        if ours.answer is not None:
            assert ours.answer.model_dump(exclude={"confidence"}) == local.answer.model_dump(
                exclude={"confidence"}
            )
            assert ours.answer.confidence == pytest.approx(local.answer.confidence, abs=1e-3)


def test_citations_slice_back_exactly(milvus_pipeline):
    for question in QUESTIONS[:4]:
        response = milvus_pipeline.ask(question, k=5)
        assert response.hits
        for cited in [*response.hits, *([response.answer] if response.answer else [])]:
            text = (SEEDS / cited.doc_id).read_bytes().decode("utf-8")
            assert text[cited.start_char : cited.end_char] == cited.text
            assert cited.line_start == text.count("\n", 0, cited.start_char) + 1


def test_passages_before_a_hit_match_the_local_backend(milvus_pipeline, seed_pipeline):
    """Where an answer looks for the heading a passage sits under (rag.answer.heading_over)."""
    hit = seed_pipeline.ask(QUESTIONS[0], k=1, mode="bm25").hits[0]
    hit = hit.model_copy(update={"chunk_id": f"{hit.doc_id}#5"})
    local = seed_pipeline.passages_before(hit, 3)
    assert [c.ordinal for c in local] == [4, 3, 2]
    assert milvus_pipeline.passages_before(hit, 3) == local
    first = hit.model_copy(update={"chunk_id": f"{hit.doc_id}#0"})
    assert (
        milvus_pipeline.passages_before(first, 3) == seed_pipeline.passages_before(first, 3) == []
    )


def test_filters_and_caps_match_the_local_backend(milvus_pipeline, seed_pipeline):
    doc = "003_bddc2f2a3ccead0c.txt"
    for options in ({"doc_ids": [doc]}, {"doc_ids": [doc, "000_3adcc106da112fc4.txt"]},
                    {"max_per_doc": 1}, {"doc_ids": []}):  # fmt: skip
        ours = milvus_pipeline.ask(QUESTIONS[0], k=8, **options)
        local = seed_pipeline.ask(QUESTIONS[0], k=8, **options)
        assert [h.chunk_id for h in ours.hits] == [h.chunk_id for h in local.hits], options
    with pytest.raises(DocumentNotFound, match="no document 'nope.txt'"):
        milvus_pipeline.ask(QUESTIONS[0], doc_ids=["nope.txt"])


def test_changed_and_removed_documents_are_upserted_and_deleted(
    fake_settings: Settings, fake_embedder, tmp_path: Path
):
    settings = on_milvus(fake_settings, tmp_path / "milvus.db")
    first = build_milvus_index(settings, embedder=fake_embedder)
    before = load_index(settings.index_dir)
    per_doc = {d.doc_id: d.chunks for d in before.manifest.documents}
    changed, removed = sorted(per_doc)[:2]
    path = Path(settings.corpus_dir) / changed
    path.write_text(path.read_text() + "\n\nA new closing paragraph about Milvus.\n")
    (Path(settings.corpus_dir) / removed).unlink()

    second = build_milvus_index(settings, embedder=fake_embedder)
    after = load_index(settings.index_dir)
    assert first.milvus.passages_written == before.manifest.chunk_count
    assert second.milvus.changed == [changed] and second.milvus.removed == [removed]
    assert second.milvus.passages_deleted == per_doc[changed] + per_doc[removed]
    assert second.milvus.passages_written == after.documents[changed].chunks
    assert passage_count(settings) == after.manifest.chunk_count
    assert second.milvus.spans_removed > 0  # the removed document's sentences went too

    ours = Pipeline.open(settings, embedder=fake_embedder)
    local = Pipeline.open(settings.model_copy(update={"backend": "local"}), embedder=fake_embedder)
    assert set(ours.index.documents) == set(after.documents)
    for question in ["A new closing paragraph about Milvus", *QUESTIONS[:4]]:
        a, b = ours.ask(question, k=5), local.ask(question, k=5)
        assert [h.chunk_id for h in a.hits] == [h.chunk_id for h in b.hits], question
    assert ours.ask("closing paragraph about Milvus", k=1).hits[0].doc_id == changed
    assert ensure_milvus_index(settings, embedder=fake_embedder) is None


def run_cli(*args: str, env: dict[str, str]):
    return CliRunner().invoke(cli_app, list(args), env=env, prog_name="rag")


@pytest.mark.parametrize(
    "uri, message",
    [
        ("http://127.0.0.1:1", "cannot open Milvus at http://127.0.0.1:1"),
        ("milvus-folder", "must end in .db"),
    ],
)
@pytest.mark.parametrize(
    "command", [["ask", "Where is Camp Ashraf?"], ["index"], ["serve", "--port", "0"]]
)
@pytest.mark.parametrize("chosen_by", ["RAG_BACKEND", "--backend"])
def test_unreachable_milvus_is_one_line_and_exit_2(command, uri: str, message: str, chosen_by: str):
    env = {"RAG_CORPUS_DIR": str(SEEDS), "RAG_MILVUS_URI": uri}
    if chosen_by == "RAG_BACKEND":
        env["RAG_BACKEND"] = "milvus"
    else:
        command = [*command, "--backend", "milvus"]
    result = run_cli(*command, env=env)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output + result.stderr


def test_a_lite_folder_held_by_another_process_is_refused_in_one_line(milvus_seed):
    settings, _ = milvus_seed  # this process holds its Milvus Lite folder open
    env = {
        **os.environ,
        "RAG_CORPUS_DIR": str(SEEDS),
        "RAG_INDEX_DIR": str(settings.index_dir),
        "RAG_BACKEND": "milvus",
        "RAG_MILVUS_URI": settings.milvus_uri,
    }
    result = subprocess.run(
        [str(Path(sys.executable).with_name("rag")), "ask", "Where is Camp Ashraf?"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"cannot open Milvus at {settings.milvus_uri}" in result.stderr
    assert "one process at a time" in result.stderr


HOLD = """
import sys, time
from pymilvus import MilvusClient
MilvusClient(uri=sys.argv[1])
print("held", flush=True)
time.sleep(600)
"""


def test_milvus_lost_while_serving_is_503_then_recovers(seed_index, real_embedder, tmp_path):
    """Milvus Lite stopped under the server, its folder taken by another process: 503 with
    a detail naming the URI; once that process is gone, the next question is answered."""
    from milvus_lite.server_manager import server_manager_instance

    settings = on_milvus(seed_index, tmp_path / "milvus.db")
    sync_index(settings, current_build(seed_index.index_dir))
    app = create_app(settings, load=False)
    app.state.rag.embedder = real_embedder
    app.state.rag.pipeline = Pipeline.open(settings, embedder=real_embedder)
    client = TestClient(app)
    question = {"question": QUESTIONS[0], "k": 3}
    assert client.post("/query", json=question).status_code == 200

    server_manager_instance.release_server(settings.milvus_uri)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, settings.milvus_uri], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        lost = client.post("/query", json=question)
        assert lost.status_code == 503
        assert settings.milvus_uri in lost.json()["detail"]
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.2)
    back = client.post("/query", json=question)
    assert back.status_code == 200 and back.json()["hits"][0]["doc_id"] == (
        "003_bddc2f2a3ccead0c.txt"
    )


def test_concurrent_questions_get_the_answers_of_one_at_a_time(milvus_pipeline):
    """The API answers in a thread pool: questions sharing one Milvus client at once get
    what they get alone."""
    from concurrent.futures import ThreadPoolExecutor

    def top(question: str) -> list[str]:
        return [h.chunk_id for h in milvus_pipeline.ask(question, k=3).hits]

    alone = [top(q) for q in QUESTIONS]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(top, QUESTIONS * 2))
    assert together == alone * 2


def test_collections_of_another_layout_are_rebuilt_not_read(
    fake_settings: Settings, fake_embedder, tmp_path: Path
):
    from rag.errors import IndexMismatch

    settings = on_milvus(fake_settings, tmp_path / "milvus.db")
    build_milvus_index(settings, embedder=fake_embedder)
    client = connect(settings)
    meta = Collections(settings.milvus_collection).meta
    row = client.query(meta, filter='key == "manifest"', output_fields=["key", "kind", "value"])[0]
    older = {**row["value"], "milvus_schema": 0}
    client.upsert(meta, [{**row, "value": older, "vector": [0.0, 0.0]}])
    with pytest.raises(IndexMismatch, match="RAG_BACKEND=milvus rag index"):
        Pipeline.open(settings, embedder=fake_embedder)
    report = ensure_milvus_index(settings, embedder=fake_embedder)
    assert report.milvus.recreated and report.milvus.passages_written == passage_count(settings)
    assert Pipeline.open(settings, embedder=fake_embedder).ask("Camp Ashraf", k=1).hits


def test_a_server_serves_its_manifest_until_reloaded(
    fake_settings: Settings, fake_embedder, tmp_path: Path
):
    """Another process's `rag index` changes Milvus under a server: the server never cites
    a document its manifest does not hold, and after reloading it serves the new one."""
    settings = on_milvus(fake_settings, tmp_path / "milvus.db")
    build_milvus_index(settings, embedder=fake_embedder)
    serving = Pipeline.open(settings, embedder=fake_embedder)
    text = "Zeppelins over Zanzibar. " * 3 + "Airships flew to the islands every spring.\n"
    (Path(settings.corpus_dir) / "zz_new.txt").write_text(text)
    build_milvus_index(settings, embedder=fake_embedder)
    question = "Zeppelins over Zanzibar"
    assert all(h.doc_id != "zz_new.txt" for h in serving.ask(question, k=5, mode="bm25").hits)
    reloaded = Pipeline.open(settings, embedder=fake_embedder)
    assert reloaded.ask(question, k=1, mode="bm25").hits[0].doc_id == "zz_new.txt"


def test_beir_eval_on_milvus_scores_as_the_local_backend(fake_settings: Settings, tmp_path: Path):
    """`RAG_BACKEND=milvus rag eval beir`: the dataset's local build (reused, not embedded
    again) synced to its own collections, so the index already at RAG_MILVUS_URI is left
    alone, and every mode ranks as the local backend does."""
    from rag.evaluation import evaluate_beir

    from .conftest import FakeEmbedder
    from .test_evaluation import _tiny_beir

    dataset = _tiny_beir(tmp_path / "tiny")
    main = on_milvus(fake_settings, tmp_path / "milvus.db")
    build_milvus_index(main, embedder=FakeEmbedder())  # the main index, at the same URI
    held = passage_count(main)
    local = fake_settings.model_copy(update={"cache_dir": tmp_path / "cache"})
    ours = evaluate_beir(local, dataset, FakeEmbedder(), depth=100)
    again = FakeEmbedder()
    theirs = evaluate_beir(on_milvus(local, tmp_path / "milvus.db"), dataset, again, depth=100)
    assert again.embedded == []  # the local build under the cache was reused
    assert (ours.settings["backend"], theirs.settings["backend"]) == ("local", "milvus")
    assert theirs.settings["passages"] == ours.settings["passages"] == 4
    assert [m.mode for m in theirs.modes] == [m.mode for m in ours.modes]
    for a, b in zip(ours.modes, theirs.modes, strict=True):
        for name in ("nDCG@10", "MRR@10", "Recall@100", "queries"):
            assert b.metrics[name] == pytest.approx(a.metrics[name]), (a.mode, name)
    assert passage_count(main) == held  # the main index's collections are untouched
    client = connect(main)
    beir = [n for n in client.list_collections() if n.startswith("rag_beir_tiny_")]
    assert len(beir) == len(Collections("x").all())
