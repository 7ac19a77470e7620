"""The FastAPI application: routers, error handling, body limit, background start-up."""

from __future__ import annotations

import importlib.resources
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import require_api_key
from api.routes import admin, documents, health, page, query
from api.state import ServerState
from rag.errors import (
    BackendUnavailable,
    DocumentNotFound,
    IndexCorrupt,
    IndexMismatch,
    IndexNotFound,
    InvalidQuery,
    InvalidSpan,
    RagError,
    SourceUnavailable,
)
from rag.settings import Settings, load_settings

LOG = logging.getLogger(__name__)


def _version() -> str:
    """rag's version from its installed metadata (pyproject.toml, the one place); a source
    tree run without installing has none."""
    try:
        return version("rag")
    except PackageNotFoundError:
        return "unknown (not installed)"


_STATUS = {
    DocumentNotFound: 404,
    InvalidQuery: 422,
    InvalidSpan: 422,
    IndexNotFound: 503,
    IndexCorrupt: 503,
    IndexMismatch: 503,
    SourceUnavailable: 503,
    BackendUnavailable: 503,
}


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, whether or not the client sent a
    Content-Length, before the application reads them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body over {self.limit} bytes: send a shorter question"},
            status_code=413,
        )
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _one_line(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def _serve_docs_offline(app: FastAPI) -> None:
    """/docs and /redoc with their scripts and styles served by this server (FastAPI's
    self-hosting recipe, assets from the fastapi-offline package): they work offline."""
    assets = importlib.resources.files("fastapi_offline") / "static"
    app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="rag API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="rag API",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/docs-assets/favicon.png",
            with_google_fonts=False,
        )


def create_app(settings: Settings | None = None, load: bool = True) -> FastAPI:
    """The app. With `load`, the index and model load in a background thread at start-up,
    so /health answers at once and /ready turns 200 when queries can be served."""
    settings = settings or load_settings()
    state = ServerState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if load:
            threading.Thread(target=state.load, name="rag-load", daemon=True).start()
        yield

    # With the key on every route, the API's description needs it too: /openapi.json takes
    # the key, and the browsable /docs and /redoc (a browser cannot send it) are off.
    closed = settings.api_key_all_routes
    app = FastAPI(
        title="rag",
        summary="Passages that answer a question, each with an exact citation.",
        version=_version(),
        lifespan=lifespan,
        openapi_url=None if closed else "/openapi.json",
        docs_url=None,  # served below from bundled assets, not from a CDN
        redoc_url=None,
    )
    app.state.rag = state
    guarded = [Depends(require_api_key)] if closed else []
    if closed:

        @app.get("/openapi.json", include_in_schema=False, dependencies=guarded)
        def openapi() -> dict:
            return app.openapi()
    else:
        _serve_docs_offline(app)

    app.include_router(health.router)
    app.include_router(query.router, dependencies=guarded)
    app.include_router(documents.router, dependencies=guarded)
    app.include_router(admin.router)
    # The page holds no data of its own: it is open even when the API needs a key, and
    # asks the reader for the key when a call is refused.
    app.include_router(page.router)
    app.mount("/static", page.static_files(), name="static")
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"detail": "the body is not valid JSON"}, status_code=400)
        if any(tuple(e.get("loc", ())) == ("body",) for e in errors):
            detail = 'the body must be a JSON object such as {"question": "...", "k": 5}, sent '
            return JSONResponse({"detail": detail + "as application/json"}, status_code=422)
        return JSONResponse({"detail": _one_line(exc)}, status_code=422)

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 400)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input: one line for the client, the traceback in the server log.
        detail = f"internal error ({type(exc).__name__}); the server log has the details"
        return JSONResponse({"detail": detail}, status_code=500)

    return app
