"""The web page's route and assets, in-process: served from the package, offline, open
even when the API needs a key; the script never turns text into HTML. The page itself is
driven in a browser by tests/browser (make test-browser)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from api.routes.page import STATIC


def test_the_page_and_its_assets_are_served_from_the_package(fake_settings):
    client = TestClient(create_app(fake_settings, load=False))
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.head("/").status_code == 200
    # Every asset it names is local (no CDN) and served.
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/static/app.js" in assets and "/static/style.css" in assets
    for asset in assets:
        assert asset.startswith("/"), asset
        assert client.get(asset).status_code == 200, asset
    assert (
        client.get("/static/app.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    assert client.get("/static/missing.js").status_code == 404


def test_the_page_is_open_when_every_route_needs_a_key(fake_settings):
    closed = fake_settings.model_copy(
        update={"api_key": SecretStr("s3cret"), "api_key_all_routes": True}
    )
    client = TestClient(create_app(closed, load=False))
    assert client.get("/").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/query", params={"q": "x"}).status_code == 401  # the data is not


def test_the_script_builds_the_page_from_text_nodes_only():
    """Corpus text is untrusted: no API that parses a string as HTML appears in the script."""
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
