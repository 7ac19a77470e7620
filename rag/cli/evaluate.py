"""`rag eval run | beir | sweep | calibrate`: measuring answer quality, one subcommand each."""

from __future__ import annotations

import json
from pathlib import Path
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
    ensure,
    err,
    handle_errors,
    out,
    progress_printer,
)
from rag.settings import load_settings

evaluate = typer.Typer(
    help="Measure answer quality on a question set or a BEIR dataset.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(evaluate, name="eval")

QuestionsOpt = Annotated[
    Path,
    typer.Option(help="Question file: JSON lines of id, question, answers, doc_ids (see README)."),
]
JsonFileOpt = Annotated[
    Path | None, typer.Option("--json", help="Write every number and result here.")
]
ReportOpt = Annotated[
    Path | None, typer.Option(help="Write a Markdown report here (and a PNG beside it).")
]
DEFAULT_QUESTIONS = Path("eval/questions.jsonl")


def _embedder(settings):
    from rag.embedding import embedder_for

    return embedder_for(settings)


def _write(result, json_file: Path | None, report: Path | None) -> None:
    """The table on the terminal; JSON and a Markdown report (with its plot) if asked."""
    from rag.evaluation.report import plot_hit_at_k, print_table, write_markdown

    print_table(result, out)
    if json_file is not None:
        json_file.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if report is not None:
        plot = report.with_suffix(".png")
        if any(m.hit_at for m in result.modes):
            plot_hit_at_k(result, plot)
        write_markdown(result, report, plot if plot.exists() else None)
        err.print(Text(f"wrote {report}" + (f" and {plot}" if plot.exists() else "")))


@evaluate.command("run")
@handle_errors
def run(
    questions: QuestionsOpt = DEFAULT_QUESTIONS,
    depth: Annotated[int, typer.Option("-k", "--depth", min=1, help="Ranks scored.")] = 10,
    json_file: JsonFileOpt = None,
    report: ReportOpt = None,
    compare: Annotated[
        Path | None,
        typer.Option(help="An earlier --json result: say which questions this run moved."),
    ] = None,
    corpus: CorpusOpt = None,
    index_dir: IndexDirOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Hit@1, Hit@5, MRR@10, document Recall@5 and nDCG@10, answer accuracy, exact
    citations and latency on a question set, in every retrieval mode, with 95% bootstrap
    intervals over the questions.

    Examples:  rag eval run  |  rag eval run --report eval/report.md --json results.json
               rag eval run --compare before.json
    """
    from rag.evaluation import evaluate_questions
    from rag.options import MODES
    from rag.pipeline import Pipeline
    from rag.questions import load_questions

    settings = as_built(load_settings(corpus_dir=corpus, index_dir=index_dir, backend=backend))
    qs = load_questions(questions)
    embedder = _embedder(settings)
    ensure(settings, embedder)
    pipeline = Pipeline.open(settings, embedder=embedder)
    tick, stop = progress_printer("questions")
    try:
        result = evaluate_questions(pipeline, qs, MODES, depth, tick, dataset=str(questions))
    finally:
        stop()
    _write(result, json_file, report)
    if compare is not None:
        from rag.evaluation.stats import moved_lines

        out.print(Text("\n".join(moved_lines(_read_report(compare), result))))


def _read_report(path: Path):
    from rag.errors import ConfigError
    from rag.evaluation.results import EvalReport

    try:
        return EvalReport.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path} as a `rag eval run --json` result ({exc})") from None


@evaluate.command("beir")
@handle_errors
def beir(
    dataset: Annotated[Path, typer.Argument(help="A BEIR-layout dataset folder.")],
    depth: Annotated[int, typer.Option("-k", "--depth", min=1, help="Ranks scored.")] = 100,
    json_file: JsonFileOpt = None,
    report: ReportOpt = None,
    model: ModelOpt = None,
    backend: BackendOpt = None,
) -> None:
    """nDCG@10, MRR@10 and Recall@100 on a BEIR dataset (indexed once per content hash
    under RAG_CACHE_DIR). With --backend milvus that build is synced to the dataset's own
    collections at RAG_MILVUS_URI (RAG_MILVUS_COLLECTION + "_beir_<name>_<hash>") and the
    questions are answered from there.

    Examples:  rag eval beir ../shared/bench/cranfield --report eval/cranfield.md
               rag eval beir ../shared/bench/cranfield --backend milvus
    """
    from rag.evaluation import evaluate_beir
    from rag.options import MODES

    settings = load_settings(model=model, backend=backend)
    tick, stop = progress_printer("questions")
    build_tick, build_stop = progress_printer("embedding")
    try:
        result = evaluate_beir(
            settings, dataset, _embedder(settings), MODES, depth, build_tick, tick
        )
    finally:
        build_stop()
        stop()
    _write(result, json_file, report)


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of numbers") from None


@evaluate.command("sweep")
@handle_errors
def sweep(
    questions: QuestionsOpt = DEFAULT_QUESTIONS,
    sizes: Annotated[str, typer.Option(help="Chunk sizes, comma-separated.")] = "400,800,1200",
    overlaps: Annotated[str, typer.Option(help="Overlaps, comma-separated.")] = "0,150,300",
    depth: Annotated[int, typer.Option("-k", "--depth", min=1, help="Ranks scored.")] = 10,
    json_file: JsonFileOpt = None,
    report: ReportOpt = None,
    corpus: CorpusOpt = None,
    model: ModelOpt = None,
) -> None:
    """Compare chunk sizes and overlaps on a question set (each indexed once, under
    RAG_CACHE_DIR; the main index is not touched), with the setting chosen by
    cross-validation.

    Example:  rag eval sweep --sizes 400,600 --overlaps 0,300 --report eval/sweep.md
    """
    from rag.evaluation.sweep import run_sweep, sweep_choice, sweep_markdown
    from rag.questions import load_questions

    grid = _ints(sizes), _ints(overlaps)
    settings = load_settings(corpus_dir=corpus, model=model)
    rows = run_sweep(settings, load_questions(questions), _embedder(settings), *grid, depth)
    table = sweep_markdown(rows) + "\n\n" + "\n".join(f"- {line}" for line in sweep_choice(rows))
    out.print(table)
    if report is not None:
        intro = (
            f"# Chunk settings sweep\n\nQuestions `{questions}`, corpus "
            f"`{settings.corpus_dir}`, model `{settings.model}`, {depth} passages "
            "retrieved. Produced by `rag eval sweep`.\n\n"
        )
        report.write_text(intro + table + "\n", encoding="utf-8")
    if json_file is not None:
        json_file.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


@evaluate.command("calibrate")
@handle_errors
def calibrate(
    questions: QuestionsOpt = DEFAULT_QUESTIONS,
    folds: Annotated[
        int, typer.Option(min=2, max=20, help="Cross-validation folds for the report.")
    ] = 5,
    report: ReportOpt = None,
    corpus: CorpusOpt = None,
    index_dir: IndexDirOpt = None,
) -> None:
    """Fit the answer algorithm (span selection, confidence, abstention threshold) on a
    question set and report it by cross-validation; prints the constants it found.

    Example:  rag eval calibrate --folds 5 --report eval/abstention.md
    """
    from rag.evaluation.calibration import calibrate_markdown, calibrate_questions
    from rag.pipeline import Pipeline
    from rag.questions import load_questions

    settings = as_built(load_settings(corpus_dir=corpus, index_dir=index_dir))
    embedder = _embedder(settings)
    ensure(settings, embedder)
    pipeline = Pipeline.open(settings, embedder=embedder)
    result = calibrate_questions(pipeline, load_questions(questions), folds)
    text = calibrate_markdown(result, questions, folds)
    out.print(text)
    if report is not None:
        report.write_text(text + "\n", encoding="utf-8")
    fitted = result["fitted"]
    err.print(Text(f"SELECTION_WEIGHTS = {fitted.selection}"))
    err.print(Text(f"CONFIDENCE_WEIGHTS = {fitted.confidence}"))
    err.print(Text(f"to apply the threshold: export RAG_ANSWER_THRESHOLD={fitted.threshold}"))
