"""The web page at `/`: one HTML file and its script and style, bundled with the package
(no CDN, no build step), so a browser can ask and check citations with the server offline."""

from __future__ import annotations

import importlib.resources

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = importlib.resources.files("api") / "static"

# Defence in depth: the page builds its DOM from text nodes only, and even so nothing but
# its own script may run, and it may talk to this server only.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


@router.api_route("/", methods=["GET", "HEAD"])
def page() -> FileResponse:
    """The page; what it shows comes from the API it calls (/query, /documents)."""
    return FileResponse(str(STATIC / "index.html"), headers=_HEADERS)


def static_files() -> StaticFiles:
    """The page's script and style, served from the installed package."""
    return StaticFiles(directory=str(STATIC))
