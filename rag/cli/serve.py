"""`rag serve`: the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from rag.cli.common import (
    BackendOpt,
    CorpusOpt,
    IndexDirOpt,
    ModelOpt,
    app,
    as_built,
    err,
    handle_errors,
)
from rag.settings import load_settings


@app.command()
@handle_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Address [env RAG_HOST; 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [env RAG_PORT; 8000]")] = None,
    corpus: CorpusOpt = None,
    index_dir: IndexDirOpt = None,
    model: ModelOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs). Loopback only unless --host says
    otherwise; the index is built first if there is none.

    Examples:  rag serve   |   rag serve --port 9000   |   curl 'localhost:8000/query?q=...'
    """
    from api.server import check_port_free, serve

    settings = as_built(
        load_settings(
            corpus_dir=corpus,
            index_dir=index_dir,
            model=model,
            host=host,
            port=port,
            backend=backend,
        )
    )
    check_port_free(settings.host, settings.port)
    if settings.backend == "milvus":  # unreachable: one line and exit 2, not a 503 later
        from rag.milvus_store import connect

        connect(settings)
    err.print(Text(f"serving on http://{settings.host}:{settings.port} (docs at /docs)"))
    serve(settings)
