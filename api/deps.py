"""Dependencies shared by the routes."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from api.state import ServerState
from rag.pipeline import Pipeline
from rag.settings import Settings

API_KEY_HEADER = "X-API-Key"
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


def get_state(request: Request) -> ServerState:
    return request.app.state.rag


def get_settings(state: Annotated[ServerState, Depends(get_state)]) -> Settings:
    return state.settings


def get_pipeline(state: Annotated[ServerState, Depends(get_state)]) -> Pipeline:
    """The live pipeline, taken once per request (a reload does not change it mid-way)."""
    pipeline = state.pipeline
    if pipeline is None and state.loading:  # Retry-After: a client may simply wait
        detail = f"not ready: {state.problem}; retry shortly"
        raise HTTPException(503, detail=detail, headers={"Retry-After": "1"})
    if pipeline is None:  # the load failed: waiting will not help, fixing it will
        detail = f"not ready: {state.problem} (fix it, then POST /admin/reload or restart)"
        raise HTTPException(503, detail=detail)
    return pipeline


def require_api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    given: Annotated[str | None, Security(_api_key)] = None,
) -> None:
    """Check the X-API-Key header when RAG_API_KEY is set; keys compare in constant time."""
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value().encode()
    if given is None or not hmac.compare_digest(given.encode(), expected):
        raise HTTPException(
            401,
            detail=f"missing or wrong {API_KEY_HEADER} header",
            headers={"WWW-Authenticate": "ApiKey"},
        )


StateDep = Annotated[ServerState, Depends(get_state)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
