"""The HTTP API in-process (TestClient): every endpoint and every kind of bad input."""

from __future__ import annotations

import re

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from api.main import create_app
from rag.settings import Settings, load_settings

from .conftest import SEEDS


def make_client(seed_index, seed_pipeline, real_embedder, **overrides) -> TestClient:
    app = create_app(Settings(**{**seed_index.model_dump(), **overrides}), load=False)
    app.state.rag.embedder = real_embedder
    app.state.rag.pipeline = seed_pipeline
    return TestClient(app)


@pytest.fixture(scope="module")
def client(seed_index, seed_pipeline, real_embedder) -> TestClient:
    return make_client(seed_index, seed_pipeline, real_embedder)


def test_health_and_readiness(seed_index):
    app = create_app(seed_index, load=False)
    with TestClient(app) as fresh:
        assert fresh.get("/health").json() == {"status": "ok"}
        not_ready = fresh.get("/ready")
        assert not_ready.status_code == 503 and not not_ready.json()["ready"]
        loading = fresh.post("/query", json={"question": "hi"})
        assert loading.status_code == 503 and loading.headers["retry-after"] == "1"


def test_a_failed_load_is_a_503_without_retry_after(tmp_path):
    """Loading says "retry" (Retry-After); a load that failed says what is wrong, once."""
    from rag.settings import load_settings

    empty = tmp_path / "empty"
    empty.mkdir()
    app = create_app(load_settings(corpus_dir=empty, index_dir=tmp_path / "idx"), load=False)
    app.state.rag.load()  # no document to index: the load fails
    with TestClient(app) as fresh:
        failed = fresh.post("/query", json={"question": "hi"})
        assert failed.status_code == 503 and "retry-after" not in failed.headers
        assert "no readable document" in failed.json()["detail"]
        assert "/admin/reload" in failed.json()["detail"]


def test_ready_when_loaded(client):
    body = client.get("/ready").json()
    assert body["ready"] and body["documents"] == 5 and body["chunks"] > 100


def test_post_query_returns_the_shared_response_model(client):
    response = client.post(
        "/query", json={"question": "How far is Camp Ashraf from Baghdad?", "k": 3}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "question", "mode", "hits", "answer", "answerable", "took_ms"}
    assert len(body["hits"]) == 3 and body["mode"] == "hybrid"
    answer = body["answer"]
    assert body["answerable"] is True and "77 kilometers" in answer["text"]
    text = (SEEDS / answer["doc_id"]).read_bytes().decode("utf-8")
    assert text[answer["start_char"] : answer["end_char"]] == answer["text"]
    assert answer["line_start"] == text.count("\n", 0, answer["start_char"]) + 1
    assert answer["line_end"] == text.count("\n", 0, answer["end_char"] - 1) + 1
    assert answer["section"] and answer["doc_sha256"] == body["hits"][0]["doc_sha256"]
    top = body["hits"][0]
    assert top["doc_id"] == "003_bddc2f2a3ccead0c.txt" and "77 kilometers" in top["text"]
    text = (SEEDS / top["doc_id"]).read_bytes().decode("utf-8")
    assert text[top["start_char"] : top["end_char"]] == top["text"]


def test_get_query_matches_post(client):
    question = "Who leaked the Montazeri audio tape?"
    got = client.get("/query", params={"q": question, "k": 4}).json()
    posted = client.post("/query", json={"question": question, "k": 4}).json()
    assert [h["chunk_id"] for h in got["hits"]] == [h["chunk_id"] for h in posted["hits"]]


def test_modes_and_explain(client):
    for mode in ("dense", "bm25", "hybrid"):
        body = client.post(
            "/query", json={"question": "Astan Quds Razavi", "k": 3, "mode": mode, "explain": True}
        ).json()
        assert body["mode"] == mode and body["hits"]
        why = body["hits"][0]["explain"]
        assert set(why) == {"dense_rank", "dense_score", "bm25_rank", "bm25_score", "fused_score"}
    got = client.get("/query", params={"q": "Astan Quds Razavi", "mode": "bm25"}).json()
    assert "Astan Quds Razavi" in got["hits"][0]["text"] and got["hits"][0]["explain"] is None


def test_unanswerable_question_says_so(client):
    body = client.post("/query", json={"question": "Who designed the Eiffel Tower?"}).json()
    assert body["answer"] is None and body["answerable"] is False and body["hits"]


def test_doc_filter_and_min_score(client):
    only = ["000_3adcc106da112fc4.txt", "002_d2ed503e188a2ca5.txt"]
    body = client.post("/query", json={"question": "Camp Ashraf", "k": 10, "doc_ids": only}).json()
    assert body["hits"] and {h["doc_id"] for h in body["hits"]} <= set(only)
    body = client.post(
        "/query", json={"question": "Camp Ashraf", "k": 10, "min_score": 0.4, "mode": "dense"}
    ).json()
    assert body["hits"] and all(h["score"] >= 0.4 for h in body["hits"])
    body = client.post("/query", json={"question": "Camp Ashraf", "k": 10, "max_per_doc": 1}).json()
    assert len({h["doc_id"] for h in body["hits"]}) == len(body["hits"])
    # GET takes the same options as POST, doc_ids repeated.
    got = client.get(
        "/query", params={"q": "Camp Ashraf", "k": 10, "max_per_doc": 2, "doc_ids": only}
    ).json()
    posted = client.post(
        "/query", json={"question": "Camp Ashraf", "k": 10, "max_per_doc": 2, "doc_ids": only}
    ).json()
    assert [h["chunk_id"] for h in got["hits"]] == [h["chunk_id"] for h in posted["hits"]]
    assert {h["doc_id"] for h in got["hits"]} <= set(only) and len(got["hits"]) <= 4


def test_documents(client):
    listed = client.get("/documents").json()
    assert [d["doc_id"] for d in listed] == sorted(p.name for p in SEEDS.glob("*.txt"))
    one = client.get("/documents/004_344e65d2d89902b4.txt").json()
    assert one["title"] == "Amnesty International's report on the 1988 massacre"
    span = client.get(
        "/documents/003_bddc2f2a3ccead0c.txt/text", params={"start": 100, "end": 140, "context": 20}
    ).json()
    text = (SEEDS / "003_bddc2f2a3ccead0c.txt").read_bytes().decode("utf-8")
    assert span["text"] == text[100:140] and span["before"] == text[80:100]
    assert span["after"] == text[140:160] and span["stale"] is False


def test_unicode_and_control_characters_are_answered(client):
    for question in (
        "کمپ اشرف کجاست؟",
        "مخيم أشرف",
        "Camp Ashraf 🏕️",
        "Camp\x00 Ashraf\x07\x1b[31m",
    ):
        response = client.post("/query", json={"question": question, "k": 2})
        assert response.status_code == 200, (question, response.text)
        assert "\x00" not in response.json()["question"]


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "message"),
    [
        ("post", "/query", {"json": {"question": ""}}, 422, "question"),
        ("post", "/query", {"json": {"question": "   \n"}}, 422, "empty"),
        ("post", "/query", {"json": {"question": "why " * 600}}, 422, "over the limit"),
        ("post", "/query", {"json": {"question": "x", "k": 0}}, 422, "k: Input should be greater"),
        ("post", "/query", {"json": {"question": "x", "k": 51}}, 422, "k: Input should be less"),
        (
            "post",
            "/query",
            {"json": {"question": "x", "k": "five"}},
            422,
            "k: Input should be a valid integer",
        ),
        ("post", "/query", {"json": {"question": 42}}, 422, "question"),
        ("post", "/query", {"json": {"question": "x", "mode": "fuzzy"}}, 422, "mode"),
        ("post", "/query", {"json": {"question": "x", "colour": "red"}}, 422, "colour"),
        ("post", "/query", {"json": ["question"]}, 422, "JSON object"),
        (
            "post",
            "/query",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "not valid JSON",
        ),
        (
            "post",
            "/query",
            {
                "content": b"question=hi",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            422,
            "JSON object",
        ),
        ("post", "/query", {"json": {"question": "x", "doc_ids": ["nope.txt"]}}, 404, "nope.txt"),
        (
            "post",
            "/query",
            {"json": {"question": "x", "doc_ids": ["../../etc/passwd"]}},
            404,
            "no document",
        ),
        ("post", "/query", {"json": {"question": "x" * 70_000}}, 413, "over 65536 bytes"),
        ("get", "/query", {"params": {"q": ""}}, 422, "q"),
        ("get", "/query", {"params": {"q": "x", "k": 99}}, 422, "k"),
        ("get", "/query", {"params": {"q": "x", "max_per_doc": -5}}, 422, "max_per_doc"),
        ("post", "/query", {"json": {"question": "x", "k": True}}, 422, "k"),
        ("post", "/query", {"json": {"question": "x", "max_per_doc": False}}, 422, "max_per_doc"),
        ("get", "/query", {}, 422, "q: Field required"),
        ("get", "/documents/nope.txt", {}, 404, "Document not found"),
        ("get", "/documents/../../etc/passwd", {}, 404, "Not"),  # normalized to /etc/passwd
        ("get", "/documents/..%2F..%2Fetc%2Fpasswd", {}, 404, "Document not found"),
        ("get", "/documents/%2Fetc%2Fpasswd/text", {}, 404, "Document not found"),
        ("get", "/documents//etc/passwd/text", {}, 404, "Document not found"),
        (
            "get",
            "/documents/000_3adcc106da112fc4.txt/text",
            {"params": {"start": 50, "end": 10}},
            422,
            "does not fit",
        ),
        (
            "get",
            "/documents/000_3adcc106da112fc4.txt/text",
            {"params": {"start": 0, "end": 10**7}},
            422,
            "does not fit",
        ),
        (
            "get",
            "/documents/000_3adcc106da112fc4.txt/text",
            {"params": {"start": -1}},
            422,
            "start",
        ),
        ("get", "/documents/000_3adcc106da112fc4.txt/text", {"params": {"end": "x"}}, 422, "end"),
    ],
)
def test_bad_input_gets_a_clear_4xx(client, method, url, kwargs, status, message):
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and message in detail


def test_body_limit_without_content_length(client):
    def chunks():
        for _ in range(80):
            yield b"x" * 1024

    response = client.post("/query", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_api_key_guards_admin_and_optionally_everything(seed_index, seed_pipeline, real_embedder):
    guarded = make_client(seed_index, seed_pipeline, real_embedder, api_key="s3cret")
    assert guarded.post("/admin/reload").status_code == 401
    assert guarded.post("/admin/reload", headers={"X-API-Key": "wrong"}).status_code == 401
    ok = guarded.post("/admin/reload", headers={"X-API-Key": "s3cret"})
    assert ok.status_code == 200 and ok.json()["current"].startswith("build-")
    assert guarded.get("/query", params={"q": "x"}).status_code == 200  # only admin by default

    strict = make_client(
        seed_index, seed_pipeline, real_embedder, api_key="s3cret", api_key_all_routes=True
    )
    assert strict.get("/query", params={"q": "x"}).status_code == 401
    assert strict.get("/documents").status_code == 401
    assert strict.get("/documents", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert strict.get("/health").status_code == 200 and strict.get("/ready").status_code == 200
    # The API's description needs the key too; the browsable docs are off.
    assert strict.get("/openapi.json").status_code == 401
    assert strict.get("/openapi.json", headers={"X-API-Key": "s3cret"}).json()["paths"]
    assert strict.get("/docs").status_code == 404 and strict.get("/redoc").status_code == 404


def test_the_server_default_k_is_rag_top_k(seed_index, seed_pipeline, real_embedder):
    from rag.pipeline import Pipeline

    two = seed_index.model_copy(update={"top_k": 2})
    pipeline = Pipeline(two, seed_pipeline.index, real_embedder)
    client = make_client(two, pipeline, real_embedder)
    assert len(client.get("/query", params={"q": "Camp Ashraf"}).json()["hits"]) == 2
    assert len(client.post("/query", json={"question": "Camp Ashraf"}).json()["hits"]) == 2


def test_nan_scores_and_empty_filters(client):
    for bad in ("NaN", "Infinity", "-inf"):
        response = client.get("/query", params={"q": "Camp Ashraf", "min_score": bad})
        assert response.status_code == 422 and "\n" not in response.json()["detail"]
    body = '{"question": "Camp Ashraf", "min_score": NaN}'
    response = client.post("/query", content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422)
    empty = client.post("/query", json={"question": "Camp Ashraf", "doc_ids": []})
    assert empty.status_code == 200 and empty.json()["hits"] == []
    assert empty.json()["answerable"] is False


def test_reload_failure_keeps_serving_the_old_index(
    seed_index, seed_pipeline, real_embedder, tmp_path
):
    client = make_client(seed_index, seed_pipeline, real_embedder, index_dir=tmp_path / "gone")
    response = client.post("/admin/reload")
    assert response.status_code == 503 and "run `rag index`" in response.json()["detail"]
    assert client.get("/query", params={"q": "Camp Ashraf"}).status_code == 200


def test_openapi_docs_are_served(client):
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200 and "cdn" not in html.text.lower()
        assets = re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', html.text)
        assert assets and all(client.get(a).status_code == 200 for a in assets)  # offline
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/query", "/documents", "/health", "/ready", "/admin/reload"} <= set(paths)


# Schemathesis reads the schema when this module is imported; the app gets its pipeline
# from the fixture below before any generated request is sent.
_schema_app = create_app(load_settings(), load=False)
schema = schemathesis.openapi.from_asgi("/openapi.json", _schema_app)


@pytest.fixture
def loaded_schema_app(seed_index, seed_pipeline, real_embedder):
    state = _schema_app.state.rag
    state.settings, state.embedder, state.pipeline = seed_index, real_embedder, seed_pipeline
    return _schema_app


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_from_schema_driven_input(case, loaded_schema_app):
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, response.text)
