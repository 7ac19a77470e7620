"""What the commands share: the app, the consoles, common options, one-line errors,
progress, and the build report."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from rag.errors import RagError
from rag.settings import Settings

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
BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend", help="Where the index is served from: local or milvus [env RAG_BACKEND]"
    ),
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


def progress_printer(label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
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


def as_built(settings: Settings) -> Settings:
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


def pages_label(page: int | None, page_end: int | None) -> str:
    """How a citation names its pages: "page 3", "pages 3-4" (a span across a page break), or
    nothing for an unpaged format."""
    if not page:
        return ""
    return f"pages {page}-{page_end}" if page_end and page_end != page else f"page {page}"


def summary_lines(report: Any) -> list[str]:
    """What the corpus held: documents read per format, files skipped per reason, files
    of extensions not read (RAG_EXTENSIONS)."""
    lines = ["read: " + ", ".join(f"{n} {kind}" for kind, n in sorted(report.formats.items()))]
    if report.skipped_reasons:
        reasons = sorted(report.skipped_reasons.items())
        lines.append("skipped: " + ", ".join(_counted(n, reason) for reason, n in reasons))
    if report.unsupported:
        kinds = ", ".join(f"{n} {ext}" for ext, n in sorted(report.unsupported.items()))
        lines.append(f"not read (extension not in RAG_EXTENSIONS): {kinds}")
    return lines


def _counted(n: int, reason: str) -> str:
    """A count of skipped files by reason: "3 empty files", "1 binary file", "2 encrypted",
    "2 links outside the corpus"."""
    if n == 1:
        return f"{n} {reason}"
    if reason in _PLURALS:
        return f"{n} {_PLURALS[reason]}"
    return f"{n} {reason}s" if reason.endswith(("file", "folder")) else f"{n} {reason}"


_PLURALS = {
    "link outside the corpus": "links outside the corpus",
    "symlink loop": "symlink loops",
    "file name not UTF-8": "file names not UTF-8",
}


def print_build(report: Any) -> None:
    for name, (old, new) in report.settings_changed.items():
        err.print(Text(f"rebuilding with {name} {new} (was {old})"))
    for line in summary_lines(report):
        err.print(Text(line))
    if getattr(report, "milvus", None) is not None:  # RAG_BACKEND=milvus (rag.milvus_store)
        m = report.milvus
        err.print(
            Text(
                f"milvus {m.uri}: {m.passages_written} passages written, "
                f"{m.passages_deleted} deleted, {m.spans_added} answer spans added, "
                f"{m.spans_removed} removed, in {m.seconds:.1f}s"
            )
        )
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


def build(settings: Settings, embedder: Any, rebuild: bool = False) -> Any:
    """Build or update the index, with a progress bar."""
    from rag.build import build_index

    update, stop = progress_printer("embedding")
    try:
        if settings.backend == "milvus":
            from rag.milvus_pipeline import build_milvus_index

            return build_milvus_index(settings, embedder, rebuild=rebuild, progress=update)
        return build_index(settings, embedder=embedder, rebuild=rebuild, progress=update)
    finally:
        stop()


def ensure(settings: Settings, embedder: Any) -> Any:
    """Build the index only when it is missing or stale (None when it is current)."""
    from rag.pipeline import ensure_index

    update, stop = progress_printer("embedding")
    try:
        return ensure_index(settings, embedder=embedder, progress=update)
    finally:
        stop()
