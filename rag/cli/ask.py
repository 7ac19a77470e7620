"""`rag ask`: the answer first, then the passages, each with its citation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from rag.cli.common import (
    BackendOpt,
    CorpusOpt,
    IndexDirOpt,
    JsonOpt,
    ModelOpt,
    app,
    as_built,
    ensure,
    handle_errors,
    out,
    pages_label,
    print_build,
)
from rag.questions import read_questions
from rag.settings import load_settings


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
    pages = pages_label(answer.page, answer.page_end)
    where = f"  {answer.doc_id}" + (f"  {pages}" if pages else "")
    head.append(f"{where}  chars {answer.start_char}-{answer.end_char}", style="cyan")
    out.print(head)
    for line in _wrap(" ".join(answer.text.split()), min(out.width, 100) - 3):
        out.print(Text("   " + line, style="bold"))
    if answer.evidence is not None:  # the answer is the heading this sentence sits under
        evidence = answer.evidence
        said = Text("   under it: ", style="dim")
        said.append(f"chars {evidence.start_char}-{evidence.end_char}", style="cyan")
        out.print(said)
        for line in _wrap(" ".join(evidence.text.split()), min(out.width, 100) - 3):
            out.print(Text("   " + line))
    out.print()


def _passage_text(hit: Any, answer: Any) -> Text:
    """The passage, the answer highlighted in it when it comes from this passage, and the
    sentence it rests on when the answer is the heading that sentence sits under."""
    quotes = sorted(
        (q.start_char - hit.start_char, q.end_char - hit.start_char)
        for q in [answer, answer and answer.evidence]
        if q is not None
        and q.doc_id == hit.doc_id
        and hit.start_char <= q.start_char
        and q.end_char <= hit.end_char
    )
    text, at = Text(), 0
    for start, end in quotes:
        if start < at:  # overlapping: the first one stays marked
            continue
        text.append(hit.text[at:start])
        marked = hit.text[start:end]
        if out.is_terminal:
            text.append(marked, style="bold black on yellow")
        else:
            text.append(f"[[{marked}]]")
        at = end
    text.append(hit.text[at:])
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
        if hit.page:
            head.append(f"  {pages_label(hit.page, hit.page_end)}")
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
    backend: BackendOpt = None,
) -> None:
    """Answer a question with the passages that answer it, each with its citation.
    Builds the index first when there is none or the corpus changed.

    Examples:  rag ask "How far is Camp Ashraf from Baghdad?"  |  rag ask "..." -k 3 --json
               rag ask --questions eval/questions.jsonl --json > answers.jsonl
    """
    from rag.embedding import embedder_for
    from rag.pipeline import Pipeline, clean_question

    if (question is None) == (questions_file is None):
        raise typer.BadParameter("give either a QUESTION or --questions FILE")
    settings = as_built(
        load_settings(
            corpus_dir=corpus,
            index_dir=index_dir,
            model=model,
            mode=mode,
            max_per_doc=max_per_doc,
            backend=backend,
        )
    )
    many = read_questions(questions_file) if questions_file is not None else None
    for _, text in many or [("", question or "")]:
        clean_question(text, settings.max_question_chars)
    embedder = embedder_for(settings)
    report = ensure(settings, embedder)
    if report is not None:
        print_build(report)
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
