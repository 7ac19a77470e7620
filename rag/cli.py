"""The `rag` command: a verb per command, human output by default, `--json` for scripts.
Errors become one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from rag.errors import ConfigError, DocumentNotFound, RagError
from rag.settings import Settings, load_settings

app = typer.Typer(
    help="Ask questions of a document corpus; every passage comes with an exact citation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # messages stay on one line

F = TypeVar("F", bound=Callable[..., Any])

CorpusOpt = Annotated[
    Path | None, typer.Option("--corpus", help="Corpus folder [env RAG_CORPUS_DIR; default seeds]")
]
IndexDirOpt = Annotated[
    Path | None, typer.Option("--index-dir", help="Index folder [env RAG_INDEX_DIR; default index]")
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", help="sentence-transformers model name or folder [env RAG_MODEL]"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def handle_errors(command: F) -> F:
    """Turn domain errors into one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RagError as exc:
            err.print(Text(f"error: {exc}"), soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


class _OneLineHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        err.print(Text(f"{record.levelname.lower()}: {record.getMessage()}"), soft_wrap=True)


def _setup_logging(verbose: bool = False) -> None:
    logger = logging.getLogger("rag")
    if not any(isinstance(h, _OneLineHandler) for h in logger.handlers):
        logger.addHandler(_OneLineHandler())
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    _setup_logging(verbose)


def _progress_printer(label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A progress callback: a bar on a terminal; on a file or pipe (`2> log`), a line at
    every tenth of the work or every 30 seconds, so that a long build is never silent."""
    if not err.is_terminal:
        return _progress_lines(label), (lambda: None)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        f"[progress.description]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    task: list[Any] = []

    def update(done: int, total: int) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task(label, total=total))
        bar.update(task[0], completed=done, total=total)

    return update, bar.stop


def _as_built(settings: Settings) -> Settings:
    """The settings a query-time command uses: the index's own build parameters."""
    from rag.params import settings_as_built

    return settings_as_built(settings)


def _progress_lines(label: str, every_s: float = 30.0) -> Callable[[int, int], None]:
    import time

    started = time.monotonic()
    said = {"tenth": 0, "at": started}

    def update(done: int, total: int) -> None:
        now = time.monotonic()
        tenth = done * 10 // max(total, 1)
        if tenth > said["tenth"] or now - said["at"] >= every_s:
            said.update(tenth=tenth, at=now)
            rate = done / max(now - started, 1e-9)
            left = (total - done) / rate if rate else 0
            err.print(
                Text(
                    f"{label}: {done}/{total} ({done / max(total, 1):.0%}), "
                    f"{now - started:.0f}s elapsed, about {left:.0f}s left"
                )
            )

    return update


def _print_build(report: Any) -> None:
    for name, (old, new) in report.settings_changed.items():
        err.print(Text(f"rebuilding with {name} {new} (was {old})"))
    if report.up_to_date:
        err.print(f"index is up to date ({report.chunks} passages)")
        return
    parts = [
        f"{len(report.added)} added",
        f"{len(report.changed)} changed",
        f"{len(report.removed)} removed",
        f"{len(report.unchanged)} unchanged",
    ]
    if report.skipped:
        parts.append(f"{len(report.skipped)} skipped")
    err.print(Text(f"documents: {', '.join(parts)}"))
    changes = {"added": report.added, "changed": report.changed, "removed": report.removed}
    for label, ids in changes.items():
        for doc_id in ids:
            err.print(Text(f"  {label}: {doc_id}"))
    err.print(
        Text(
            f"passages: {report.chunks} ({report.embedded} embedded, {report.reused} reused"
            + (f", {report.cached} vectors from the cache" if report.cached else "")
            + "), "
            f"{report.spans_embedded} answer spans embedded, in {report.seconds:.1f}s "
            f"-> {report.build}"
        )
    )


def _build(settings: Settings, embedder: Any, rebuild: bool = False) -> Any:
    """Build or update the index, with a progress bar."""
    from rag.build import build_index

    update, stop = _progress_printer("embedding")
    try:
        return build_index(settings, embedder=embedder, rebuild=rebuild, progress=update)
    finally:
        stop()


def _ensure(settings: Settings, embedder: Any) -> Any:
    """Build the index only when it is missing or stale (None when it is current)."""
    from rag.pipeline import ensure_index

    update, stop = _progress_printer("embedding")
    try:
        return ensure_index(settings, embedder=embedder, progress=update)
    finally:
        stop()


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
) -> None:
    """Build the index, or update it: only new and changed passages are embedded.

    Examples:  rag index   |   rag index --corpus ~/notes --index-dir ~/.rag/notes
    """
    from rag.embedding import SentenceTransformerEmbedder
    from rag.params import settings_for_build

    settings = settings_for_build(
        load_settings(
            corpus_dir=corpus,
            index_dir=index_dir,
            model=model,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
        )
    )
    _print_build(_build(settings, SentenceTransformerEmbedder(settings.model), rebuild=rebuild))


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


def _print_answer(response: Any) -> None:
    """The answer first, with its citation; or a plain statement that there is none."""
    answer = response.answer
    if answer is None:
        if response.answerable is False:
            out.print(
                Text(
                    "No answer: the corpus does not seem to answer this. "
                    "The closest passages follow.",
                    style="bold",
                )
            )
            out.print()
        return
    head = Text("Answer ", style="bold")
    head.append(f"({answer.confidence:.0%} confident)", style="dim")
    head.append(f"  {answer.doc_id}  chars {answer.start_char}-{answer.end_char}", style="cyan")
    out.print(head)
    for line in _wrap(" ".join(answer.text.split()), min(out.width, 100) - 3):
        out.print(Text("   " + line, style="bold"))
    out.print()


def _passage_text(hit: Any, answer: Any) -> Text:
    """The passage, the answer highlighted in it when it comes from this passage."""
    start, end = 0, 0
    if answer is not None and answer.doc_id == hit.doc_id:
        if hit.start_char <= answer.start_char and answer.end_char <= hit.end_char:
            start, end = answer.start_char - hit.start_char, answer.end_char - hit.start_char
    text = Text()
    text.append(hit.text[:start])
    if end > start:
        marked = hit.text[start:end]
        if out.is_terminal:
            text.append(marked, style="bold black on yellow")
        else:
            text.append(f"[[{marked}]]")
    text.append(hit.text[end:])
    return text


def _print_hits(response: Any) -> None:
    _print_answer(response)
    if not response.hits:
        out.print("No passage found.")
        return
    for hit in response.hits:
        head = Text()
        head.append(f"{hit.rank}. ", style="bold")
        head.append(hit.doc_id, style="bold cyan")
        head.append(f"  chars {hit.start_char}-{hit.end_char}")
        head.append(f"  lines {hit.line_start}-{hit.line_end}")
        head.append(f"  score {hit.score:.3f}", style="dim")
        out.print(head)
        out.print(Text(f"   § {hit.section}", style="italic"), overflow="ellipsis", no_wrap=True)
        body = _passage_text(hit, response.answer)
        body.plain = body.plain.replace("\n", " ")  # same length: the highlight stays put
        for line in body.wrap(out, min(out.width, 100) - 3):
            out.print(Text("   ") + line)
        for place in hit.also_in:
            where = f"{place.doc_id} chars {place.start_char}-{place.end_char}"
            out.print(Text(f"   also in {where}", style="dim"))
        if hit.explain is not None:
            out.print(Text("   why: " + _why(hit.explain, response.mode), style="dim"))
        out.print()


def _why(e: Any, mode: str) -> str:
    """Each ranking's place for the hit; the fused score only where two were fused."""
    dense = f"dense #{e.dense_rank} ({e.dense_score:.3f})" if e.dense_rank else "dense -"
    bm25 = f"bm25 #{e.bm25_rank} ({e.bm25_score:.2f})" if e.bm25_rank else "bm25 -"
    fused = f", fused {e.fused_score:.4f}" if mode == "hybrid" else ""
    return f"{dense}, {bm25}{fused}"


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=max(width, 20)) or [""]


def _read_questions(path: Path) -> list[tuple[str, str]]:
    """(id, question) pairs: one question a line (its id the line number), or JSON lines
    with a "question" and an optional "id" (as eval/questions.jsonl)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read questions from {path} ({exc})") from None
    questions = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        qid = str(number)
        if line.startswith("{"):
            try:
                record = json.loads(line)
                line, qid = str(record["question"]), str(record.get("id", qid))
            except (ValueError, KeyError, TypeError):
                raise ConfigError(f'{path}:{number}: a JSON line needs a "question"') from None
        questions.append((qid, line))
    if not questions:
        raise ConfigError(f"{path} holds no question")
    return questions


@app.command()
@handle_errors
def ask(
    question: Annotated[
        str | None, typer.Argument(help="The question, in quotes.", show_default=False)
    ] = None,
    questions_file: Annotated[
        Path | None,
        typer.Option(
            "--questions", help="Answer every question of a file (a line each, or JSONL)."
        ),
    ] = None,
    k: Annotated[
        int | None, typer.Option("-k", "--top-k", min=1, max=50, help="Passages to return.")
    ] = None,
    json_output: JsonOpt = False,
    mode: Annotated[
        str | None, typer.Option(help="dense, bm25 or hybrid [env RAG_MODE; hybrid]")
    ] = None,
    explain: Annotated[
        bool, typer.Option(help="Show each hit's dense and BM25 ranks and scores.")
    ] = False,
    max_per_doc: Annotated[
        int | None, typer.Option(min=1, help="At most this many passages from one document.")
    ] = None,
    corpus: CorpusOpt = None,
    index_dir: IndexDirOpt = None,
    model: ModelOpt = None,
) -> None:
    """Answer a question with the passages that answer it, each with its citation.
    Builds the index first when there is none or the corpus changed.

    Examples:  rag ask "How far is Camp Ashraf from Baghdad?"  |  rag ask "..." -k 3 --json
               rag ask --questions eval/questions.jsonl --json > answers.jsonl
    """
    from rag.embedding import SentenceTransformerEmbedder
    from rag.pipeline import Pipeline, clean_question

    if (question is None) == (questions_file is None):
        raise typer.BadParameter("give either a QUESTION or --questions FILE")
    settings = _as_built(
        load_settings(
            corpus_dir=corpus, index_dir=index_dir, model=model, mode=mode, max_per_doc=max_per_doc
        )
    )
    many = _read_questions(questions_file) if questions_file is not None else None
    for _, text in many or [("", question or "")]:
        clean_question(text, settings.max_question_chars)
    embedder = SentenceTransformerEmbedder(settings.model)
    report = _ensure(settings, embedder)
    if report is not None:
        _print_build(report)
    # The model loaded for indexing serves the question too; otherwise the ONNX export does.
    reuse = embedder if embedder.loaded else None
    pipeline = Pipeline.open(settings, embedder=reuse)
    if many is not None:
        answers = pipeline.ask_many([q for _, q in many], k=k, explain=explain)
        for (qid, _), response in zip(many, answers, strict=True):
            response = response.model_copy(update={"id": qid})
            if json_output:
                print(response.model_dump_json())
            else:
                out.print(Text(f"Q: {response.question}", style="bold"))
                _print_hits(response)
        return
    response = pipeline.ask(question or "", k=k, explain=explain)
    if json_output:
        out.print_json(response.model_dump_json()) if out.is_terminal else print(
            response.model_dump_json(indent=2)
        )
    else:
        _print_hits(response)


@app.command()
@handle_errors
def docs(
    json_output: JsonOpt = False,
    index_dir: IndexDirOpt = None,
) -> None:
    """List the indexed documents: id, passages, size, title.

    Example:  rag docs --json
    """
    from rag.store import indexed_documents

    settings = load_settings(index_dir=index_dir)
    documents = indexed_documents(settings.index_dir)
    if json_output:
        print(json.dumps([d.model_dump() for d in documents], indent=2, ensure_ascii=False))
        return
    for d in documents:
        line = Text()
        line.append(f"{d.doc_id}", style="bold cyan")
        line.append(f"  {d.chunks} passages  {d.size} bytes  ")
        line.append(d.title)
        out.print(line, overflow="ellipsis", no_wrap=True)


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
    from rag.sources import read_cited_span
    from rag.store import indexed_records

    settings = _as_built(load_settings(corpus_dir=corpus, index_dir=index_dir))
    match = _REF.fullmatch(ref.strip())
    if match is None:
        raise ConfigError("give a document id, as `rag docs` lists them, e.g. rag show a.txt:0-80")
    doc_id = match["doc"]
    record = indexed_records(settings.index_dir).get(doc_id)
    if record is None:
        raise DocumentNotFound(f"no document {doc_id!r} in the index (see `rag docs`)")
    start, end = (int(match["start"]), int(match["end"])) if match["start"] else (None, None)
    span = read_cited_span(settings.corpus_dir, record, start, end, context, limit=None)
    if span.stale:
        err.print(
            Text(
                f"warning: {doc_id} changed since it was indexed; this span may not be the "
                "cited text (run `rag index`)"
            )
        )
    header = Text()
    header.append(doc_id, style="bold cyan")
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


@app.command()
@handle_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Address [env RAG_HOST; 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [env RAG_PORT; 8000]")] = None,
    corpus: CorpusOpt = None,
    index_dir: IndexDirOpt = None,
    model: ModelOpt = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs). Loopback only unless --host says
    otherwise; the index is built first if there is none.

    Examples:  rag serve   |   rag serve --port 9000   |   curl 'localhost:8000/query?q=...'
    """
    from api.server import check_port_free, serve

    settings = _as_built(
        load_settings(corpus_dir=corpus, index_dir=index_dir, model=model, host=host, port=port)
    )
    check_port_free(settings.host, settings.port)
    err.print(Text(f"serving on http://{settings.host}:{settings.port} (docs at /docs)"))
    serve(settings)


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of numbers") from None


@app.command("eval")
@handle_errors
def evaluate(
    questions: Annotated[
        Path,
        typer.Option(
            help="Question file: JSON lines of id, question, answers, doc_ids (see README)."
        ),
    ] = Path("eval/questions.jsonl"),
    beir: Annotated[
        Path | None, typer.Option(help="Evaluate a BEIR dataset folder instead.")
    ] = None,
    depth: Annotated[
        int | None,
        typer.Option("-k", "--depth", min=1, help="Ranks scored [10; 100 for --beir]"),
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write every number and result here.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write a Markdown report here (and a PNG beside it).")
    ] = None,
    sweep: Annotated[
        bool, typer.Option(help="Compare chunk sizes and overlaps on the question set.")
    ] = False,
    calibrate: Annotated[
        bool, typer.Option(help="Fit the answer confidence and abstention threshold.")
    ] = False,
    sizes: Annotated[str, typer.Option(help="Chunk sizes for --sweep.")] = "400,800,1200",
    overlaps: Annotated[str, typer.Option(help="Overlaps for --sweep.")] = "0,150,300",
    corpus: CorpusOpt = None,
    index_dir: IndexDirOpt = None,
    model: ModelOpt = None,
) -> None:
    """Measure answer quality: Hit@1, Hit@5, MRR@10, document Recall@5 and nDCG@10, exact
    citations and latency on a question set; nDCG@10, MRR@10 and Recall@100 on BEIR.

    Examples:  rag eval  |  rag eval --report eval/report.md
               rag eval --beir ../shared/bench/cranfield  |  rag eval --sweep
    """
    from rag.embedding import SentenceTransformerEmbedder
    from rag.evaluation import evaluate_beir, evaluate_questions, load_questions
    from rag.evaluation.report import plot_hit_at_k, print_table, write_markdown
    from rag.evaluation.sweep import run_sweep, sweep_markdown
    from rag.pipeline import MODES, Pipeline

    settings = load_settings(corpus_dir=corpus, index_dir=index_dir, model=model)
    if beir is None and not sweep:
        settings = _as_built(settings)
    embedder = SentenceTransformerEmbedder(settings.model)
    tick, stop = _progress_printer("questions")
    try:
        if beir is not None:
            build_tick, build_stop = _progress_printer("embedding")
            try:
                result = evaluate_beir(
                    settings, beir, embedder, MODES, depth or 100, build_tick, tick
                )
            finally:
                build_stop()
        elif calibrate:
            from rag.evaluation.calibration import calibrate_markdown, calibrate_questions

            _ensure(settings, embedder)
            pipeline = Pipeline.open(settings, embedder=embedder)
            text = calibrate_markdown(
                calibrate_questions(pipeline, load_questions(questions)), questions
            )
            out.print(text)
            if report is not None:
                report.write_text(text + "\n", encoding="utf-8")
            return
        elif sweep:
            rows = run_sweep(
                settings,
                load_questions(questions),
                embedder,
                _ints(sizes),
                _ints(overlaps),
                depth or 10,
            )
            table = sweep_markdown(rows)
            out.print(table)
            if report is not None:
                intro = (
                    f"# Chunk settings sweep\n\nQuestions `{questions}`, corpus "
                    f"`{settings.corpus_dir}`, model `{settings.model}`, {depth or 10} passages "
                    "retrieved. Produced by `rag eval --sweep`.\n\n"
                )
                report.write_text(intro + table + "\n", encoding="utf-8")
            if json_file is not None:
                json_file.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
            return
        else:
            qs = load_questions(questions)
            _ensure(settings, embedder)
            pipeline = Pipeline.open(settings, embedder=embedder)
            result = evaluate_questions(
                pipeline, qs, MODES, depth or 10, tick, dataset=str(questions)
            )
    finally:
        stop()
    print_table(result, out)
    if json_file is not None:
        json_file.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if report is not None:
        plot = report.with_suffix(".png")
        if any(m.hit_at for m in result.modes):
            plot_hit_at_k(result, plot)
        write_markdown(result, report, plot if plot.exists() else None)
        err.print(Text(f"wrote {report}" + (f" and {plot}" if plot.exists() else "")))


def main() -> None:
    app()
