"""Reports a person can read: a terminal table, Markdown with the failures, a plot."""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tabulate import tabulate

from rag.evaluation.results import EvalReport

_FAILURES_SHOWN = 30


def _fmt(name: str, value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if name in ("questions", "queries", "wrongly abstained"):
        return f"{value:.0f}"
    if "ms" in name:
        return f"{value:.1f}"
    if name in ("citations exact", "answer accuracy", "abstain precision", "abstain recall"):
        return f"{value:.0%}"
    return f"{value:.3f}"


def _interval(mode, name: str) -> str:
    if name not in mode.intervals:
        return ""
    lo, hi = mode.intervals[name]
    if name in ("answer accuracy", "abstain recall"):
        return f"{lo:.0%}-{hi:.0%}"
    return f"{lo:.2f}-{hi:.2f}"


def _cell(mode, name: str) -> str:
    """The figure, with its 95% interval where the report has one."""
    value = _fmt(name, mode.metrics.get(name, math.nan))
    interval = _interval(mode, name)
    return f"{value} [{interval}]" if interval else value


def metric_names(report: EvalReport) -> list[str]:
    names: list[str] = []
    for mode in report.modes:
        names.extend(n for n in mode.metrics if n not in names)
    return names


def print_table(report: EvalReport, console: Console) -> None:
    """Metrics down, modes across: fits 80 columns with several modes."""
    table = Table(title=f"{report.dataset} ({report.created})")
    table.add_column("metric")
    for mode in report.modes:
        table.add_column(mode.mode, justify="right")
    for name in metric_names(report):
        table.add_row(name, *(_fmt(name, m.metrics.get(name, math.nan)) for m in report.modes))
        if any(name in m.intervals for m in report.modes):
            table.add_row("  95% interval", *(_interval(m, name) for m in report.modes))
    console.print(table)
    for note in report.notes:
        console.print(f"note: {note}")


def markdown_table(report: EvalReport) -> str:
    names = metric_names(report)
    rows = [[mode.mode, *(_cell(mode, n) for n in names)] for mode in report.modes]
    table = markdown(rows, ["mode", *names])
    if any(mode.intervals for mode in report.modes):
        table += "\n\n_[a, b]: 95% bootstrap interval over the questions._"
    return table


def markdown(rows: list[list], headers: list[str]) -> str:
    """A Markdown (GitHub) table; cells are written as given, numbers right-aligned."""
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _snippet(text: str | None, width: int = 160) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def write_markdown(report: EvalReport, path: Path, plot: Path | None = None) -> None:
    """Settings, the table, the plot, and the questions that failed with what came first."""
    out = [f"# Evaluation: {report.dataset}", "", f"Run {report.created}.", ""]
    out += ["## Settings", ""]
    out += [f"- {key}: `{value}`" for key, value in report.settings.items()]
    out += ["", "## Results", "", markdown_table(report), ""]
    out += [f"_{note}_" for note in report.notes]
    if plot is not None:
        out += ["", f"![Hit@k by mode]({plot.name})", ""]
    if any(r.format for m in report.modes for r in m.per_question):
        out += ["", "## By format (answerable questions)", "", format_table(report)]
    reliability = [m for m in report.modes if any(r.confidence for r in m.per_question)]
    if reliability:
        out += ["", "## Reliability: answers by confidence, and how many were right", ""]
        out.append(reliability_table(reliability))
    for mode in report.modes:
        failed = [
            r
            for r in mode.per_question
            if r.answerable and not any(x <= 5 for x in r.relevant_ranks)
        ]
        if not mode.per_question:
            continue
        out += ["", f"## Failures ({mode.mode}): no answering passage in the top 5", ""]
        if not failed:
            out.append("None.")
        for r in failed[:_FAILURES_SHOWN]:
            where = f"rank {r.relevant_ranks[0]}" if r.relevant_ranks else "not in the top 10"
            out += [
                f"- **{r.id}** {r.question} (answer {where}; gold {', '.join(r.gold_doc_ids)})",
                f"  - first instead: `{r.top_doc_id}` ({r.top_score:.3f}): {_snippet(r.top_text)}",
            ]
        unanswerable = [r for r in mode.per_question if not r.answerable]
        if unanswerable:
            out += ["", f"## Unanswerable questions ({mode.mode}): what came first", ""]
            for r in unanswerable:
                out.append(
                    f"- **{r.id}** {r.question} → `{r.top_doc_id}` ({r.top_score:.3f}): "
                    f"{_snippet(r.top_text, 100)}"
                )
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def format_table(report: EvalReport) -> str:
    """Hit@1, Hit@5, MRR@10 and answer accuracy per mode and document format."""
    from rag.evaluation.results import per_question_figures

    rows = []
    for mode in report.modes:
        for kind in sorted({r.format for r in mode.per_question if r.format and r.answerable}):
            group = [r for r in mode.per_question if r.format == kind]
            figures = per_question_figures(group)
            cells = [
                f"{sum(v.values()) / len(v):.3f}" if (v := figures.get(name)) else "n/a"
                for name in ("Hit@1", "Hit@5", "MRR@10", "answer accuracy")
            ]
            answerable = sum(r.answerable for r in group)
            rows.append([mode.mode, kind, str(answerable), *cells])
    headers = ["mode", "format", "questions", "Hit@1", "Hit@5", "MRR@10", "answer accuracy"]
    return markdown(rows, headers)


CONFIDENCE_BANDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)


def reliability_table(modes: list) -> str:
    """Per mode and confidence band: answers given and how many were right (an answer to
    an unanswerable question is never right)."""
    rows = []
    for mode in modes:
        for lo, hi in zip(CONFIDENCE_BANDS, CONFIDENCE_BANDS[1:], strict=False):
            band = [
                r for r in mode.per_question if r.confidence is not None and lo <= r.confidence < hi
            ]
            right = sum(bool(r.answer_correct) for r in band)
            rows.append([mode.mode, f"{lo:.1f}-{min(hi, 1.0):.1f}", str(len(band)), str(right)])
    return markdown(rows, ["mode", "confidence", "answers", "right"])


def plot_hit_at_k(report: EvalReport, path: Path) -> None:
    """Hit@k for k = 1..10, one line a mode (PNG, headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for mode in report.modes:
        ks = sorted(mode.hit_at)
        ax.plot(ks, [mode.hit_at[k] for k in ks], marker="o", label=mode.mode)
    ax.set_xlabel("k (passages read)")
    ax.set_ylabel("Hit@k: an answering passage in the top k")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(range(1, 11))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(f"{report.dataset}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
