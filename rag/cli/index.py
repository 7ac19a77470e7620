"""`rag index` and `rag cache`: building the index and its vector cache."""

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
    build,
    err,
    handle_errors,
    out,
    print_build,
)
from rag.settings import load_settings


@app.command()
@handle_errors
def index(
    corpus: CorpusOpt = None,
    index_dir: IndexDirOpt = None,
    model: ModelOpt = None,
    chunk_size: Annotated[
        int | None, typer.Option(help="Largest passage in characters [env RAG_CHUNK_SIZE]")
    ] = None,
    chunk_overlap: Annotated[
        int | None, typer.Option(help="Characters shared by neighbours [env RAG_CHUNK_OVERLAP]")
    ] = None,
    rebuild: Annotated[bool, typer.Option(help="Embed everything again.")] = False,
    backend: BackendOpt = None,
) -> None:
    """Build the index, or update it: only new and changed passages are embedded.

    Examples:  rag index   |   rag index --corpus ~/notes --index-dir ~/.rag/notes
    """
    from rag.embedding import embedder_for
    from rag.params import settings_for_build

    settings = settings_for_build(
        load_settings(
            corpus_dir=corpus,
            index_dir=index_dir,
            model=model,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            backend=backend,
        )
    )
    print_build(build(settings, embedder_for(settings), rebuild=rebuild))


@app.command()
@handle_errors
def cache(
    clear: Annotated[bool, typer.Option(help="Remove every cached vector.")] = False,
    corpus: CorpusOpt = None,
    index_dir: IndexDirOpt = None,
) -> None:
    """Show the vector cache of an index: vectors kept across builds (so that switching
    settings back, or resuming a killed build, embeds nothing twice), or empty it.
    RAG_VECTOR_CACHE_MB bounds it.

    Examples:  rag cache   |   rag cache --clear
    """
    from rag.vector_cache import VectorCache

    settings = load_settings(corpus_dir=corpus, index_dir=index_dir)
    vectors = VectorCache(settings.index_dir)
    count, size = vectors.stats()
    if clear:
        vectors.clear()
        err.print(
            Text(f"removed {count} cached vectors ({size / 2**20:.1f} MB) from {vectors.path}")
        )
        return
    out.print(
        Text(
            f"{count} vectors, {size / 2**20:.1f} MB in {vectors.path} "
            f"(bound {settings.vector_cache_mb} MB)"
        )
    )
