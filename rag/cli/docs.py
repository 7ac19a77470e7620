"""`rag docs` and `rag show`: what is indexed, and a cited span in its context."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer
from rich.text import Text

from rag.cli.common import (
    CorpusOpt,
    IndexDirOpt,
    JsonOpt,
    app,
    as_built,
    err,
    handle_errors,
    out,
    pages_label,
)
from rag.errors import ConfigError, DocumentNotFound
from rag.settings import load_settings


@app.command()
@handle_errors
def docs(
    json_output: JsonOpt = False,
    corpus: CorpusOpt = None,
    index_dir: IndexDirOpt = None,
) -> None:
    """List the indexed documents: id, passages, size, title.

    Example:  rag docs --json
    """
    from rag.store import indexed_documents

    settings = as_built(load_settings(corpus_dir=corpus, index_dir=index_dir))
    documents = indexed_documents(settings.index_dir)
    if json_output:
        print(json.dumps([d.model_dump() for d in documents], indent=2, ensure_ascii=False))
        return
    for d in documents:
        line = Text()
        line.append(f"{d.doc_id}", style="bold cyan")
        line.append(f"  {d.chunks} passages  {d.size} bytes  ")
        line.append(d.title)
        if out.is_terminal:  # a line a document, cut to the terminal's width
            out.print(line, overflow="ellipsis", no_wrap=True)
        else:  # whole, for a pipe or a file (rich would cut it at 80 columns)
            print(line.plain)


_REF = re.compile(r"(?P<doc>.+?)(?::(?P<start>\d+)-(?P<end>\d+))?")


@app.command()
@handle_errors
def show(
    ref: Annotated[
        str, typer.Argument(metavar="DOC_ID[:START-END]", help="A document or a cited span.")
    ],
    context: Annotated[int, typer.Option(min=0, help="Characters shown around the span.")] = 200,
    corpus: CorpusOpt = None,
    index_dir: IndexDirOpt = None,
) -> None:
    """Print a cited span with some context around it, the span highlighted. Warns when the
    file changed since it was indexed (the citation may be stale).

    Examples:  rag show 003_bddc2f2a3ccead0c.txt:46480-46700  |  rag show 000_3adcc106da112fc4.txt
    """
    from rag.manifest import read_manifest
    from rag.sources import read_cited_span
    from rag.store import current_build, indexed_records

    settings = as_built(load_settings(corpus_dir=corpus, index_dir=index_dir))
    match = _REF.fullmatch(ref.strip())
    if match is None:
        raise ConfigError("give a document id, as `rag docs` lists them, e.g. rag show a.txt:0-80")
    doc_id = match["doc"]
    record = indexed_records(settings.index_dir).get(doc_id)
    build = current_build(settings.index_dir)
    assert build is not None  # indexed_records found one
    if record is None:
        why = read_manifest(build).not_indexed(doc_id)
        raise DocumentNotFound(f"{why} (`rag docs` lists what is)")
    start, end = (int(match["start"]), int(match["end"])) if match["start"] else (None, None)
    span = read_cited_span(settings.corpus_dir, record, start, end, context, None, build)
    if span.stale:
        # A plain-text file is read as it is now; another format from the text its reader
        # extracted at index time, which is the cited text but no longer the file's.
        now = (
            "this span may not be the cited text"
            if record.text_file is None
            else "this is the text as indexed, not as the file is now"
        )
        err.print(Text(f"warning: {doc_id} changed since it was indexed; {now} (run `rag index`)"))
    header = Text()
    header.append(doc_id, style="bold cyan")
    pages = pages_label(**record.pages(span.start, span.end))
    if pages:
        header.append(f"  {pages}")
    header.append(f"  chars {span.start}-{span.end}  lines {span.line_start}-{span.line_end}")
    out.print(header)
    lead = "…" if span.start - len(span.before) > 0 else ""
    tail = "…" if span.end + len(span.after) < span.chars else ""
    whole = (span.start, span.end) == (0, span.chars)
    if out.is_terminal or whole:
        body = Text()
        body.append(lead + span.before, style="dim")
        body.append(span.text, style="bold black on yellow" if out.is_terminal else "")
        body.append(span.after + tail, style="dim")
    else:  # without colours, mark the span so it stays visible in a pipe or a file
        body = Text(f"{lead}{span.before}[[{span.text}]]{span.after}{tail}")
    out.print(body)
