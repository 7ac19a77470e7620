"""Running questions through the pipeline and scoring what comes back."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote, unquote

from rag.build import build_index
from rag.embedding import Embedder
from rag.errors import ConfigError
from rag.evaluation.metrics import (
    BEIR_MEASURES,
    HIT_AT_KS,
    QUESTION_DOC_MEASURES,
    answers_question,
    document_metrics,
    passage_metrics,
    per_query,
    percentile,
)
from rag.evaluation.results import EvalReport, ModeReport, QuestionResult, per_question_figures
from rag.evaluation.stats import bootstrap_interval
from rag.models import QueryResponse
from rag.options import MODES
from rag.pipeline import Pipeline
from rag.questions import Question
from rag.settings import Settings
from rag.sources import read_cited_span
from rag.vector_sources import Progress

LOG = logging.getLogger(__name__)
Tick = Callable[[int, int], None]  # (done, total) questions


def _settings_summary(settings: Settings, depth: int) -> dict[str, object]:
    return {
        "model": settings.model,
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "passages_retrieved": depth,
        "corpus": str(settings.corpus_dir),
    }


def _ranked_docs(response: QueryResponse) -> list[str]:
    """Documents in the order their passages (or copies of them) first came."""
    ranked: list[str] = []
    for hit in response.hits:
        for doc_id in [hit.doc_id, *(p.doc_id for p in hit.also_in)]:
            if doc_id not in ranked:
                ranked.append(doc_id)
    return ranked


def document_text(pipeline: Pipeline, doc_id: str) -> str:
    """The whole text citations of `doc_id` index into (the file, or its extracted text)."""
    record = pipeline.index.documents[doc_id]
    corpus, build = pipeline.settings.corpus_dir, pipeline.index.path
    return read_cited_span(corpus, record, limit=None, build=build).text


def _latency(took: list[float]) -> dict[str, float]:
    return {"latency p50 ms": percentile(took, 50), "latency p95 ms": percentile(took, 95)}


def evaluate_questions(
    pipeline: Pipeline,
    questions: list[Question],
    modes: Iterable[str] = MODES,
    depth: int = 10,
    tick: Tick | None = None,
    dataset: str = "questions",
) -> EvalReport:
    """Ask every question in every mode; score passages, documents and citations."""
    texts: dict[str, str] = {}

    def text_of(doc_id: str) -> str:
        if doc_id not in texts:
            texts[doc_id] = document_text(pipeline, doc_id)
        return texts[doc_id]

    reports = []
    modes = list(modes)
    for mode in modes:
        results: list[QuestionResult] = []
        for i, q in enumerate(questions):
            response = pipeline.ask(q.question, k=depth, mode=mode)
            for hit in response.hits:
                for place in [hit, *hit.also_in]:
                    text_of(place.doc_id)
            exact = sum(
                text_of(h.doc_id)[h.start_char : h.end_char] == h.text for h in response.hits
            )
            answer = response.answer
            quoted = [q for q in (answer, answer and answer.evidence) if q is not None]
            exact += sum(text_of(q.doc_id)[q.start_char : q.end_char] == q.text for q in quoted)
            top = response.hits[0] if response.hits else None
            results.append(
                QuestionResult(
                    id=q.id,
                    question=q.question,
                    answerable=q.answerable,
                    relevant_ranks=[h.rank for h in response.hits if answers_question(h, q, texts)],
                    gold_doc_ids=q.doc_ids,
                    ranked_doc_ids=_ranked_docs(response),
                    top_doc_id=top.doc_id if top else None,
                    top_text=top.text if top else None,
                    top_score=top.score if top else None,
                    citations=len(response.hits) + len(quoted),
                    citations_exact=exact,
                    took_ms=response.took_ms,
                    answer_text=answer.text if answer else None,
                    answer_doc_id=answer.doc_id if answer else None,
                    answer_correct=answer is not None
                    and answer.doc_id in q.doc_ids
                    and any(a.lower() in answer.text.lower() for a in q.answers),
                    abstained=None if response.answerable is None else not response.answerable,
                    confidence=answer.confidence if answer else None,
                    format=q.format,
                )
            )
            if tick is not None:
                tick(i + 1 + len(reports) * len(questions), len(questions) * len(modes))
        answerable = [r for r in results if r.answerable]
        metrics = passage_metrics({r.id: r.relevant_ranks for r in answerable}, depth)
        hit_at = {k: metrics.pop(f"Hit@{k}") for k in HIT_AT_KS}
        metrics = {"Hit@1": hit_at[1], "Hit@5": hit_at[5], **metrics}
        metrics.update(
            document_metrics(
                {r.id: dict.fromkeys(r.gold_doc_ids, 1) for r in answerable},
                {r.id: r.ranked_doc_ids for r in answerable},
                QUESTION_DOC_MEASURES,
            )
        )
        citations = sum(r.citations for r in results)
        metrics["citations exact"] = (
            sum(r.citations_exact for r in results) / citations if citations else 1.0
        )
        metrics.update(answer_metrics(results))
        metrics.update(_latency([r.took_ms for r in results]))
        metrics["questions"] = float(len(answerable))
        intervals = {
            name: bootstrap_interval(list(values.values()))
            for name, values in per_question_figures(results).items()
        }
        reports.append(
            ModeReport(
                mode=mode, metrics=metrics, hit_at=hit_at, intervals=intervals, per_question=results
            )
        )
    return EvalReport(
        dataset=dataset,
        settings=_settings_summary(pipeline.settings, depth),
        created=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        modes=reports,
        notes=_notes(questions, set(pipeline.index.documents)),
    )


def _notes(questions: list[Question], indexed: set[str]) -> list[str]:
    """What a reader of the figures must know: unanswerable questions, and gold documents
    the index does not hold (a misspelt id, a file skipped when indexing), which no passage
    can match, so that a typo shows instead of silently lowering every figure."""
    notes = []
    unknown = sorted({d for q in questions for d in q.doc_ids} - indexed)
    if unknown:
        shown = ", ".join(unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        notes.append(
            f"{_count(len(unknown), 'gold document')} not in the index (misspelt, or skipped "
            f"when indexing): {shown}; no passage of theirs can be found."
        )
    unanswerable = sum(not q.answerable for q in questions)
    if unanswerable:
        notes += [
            f"{_count(unanswerable, 'unanswerable question')} "
            f"{'counts' if unanswerable == 1 else 'count'} only in the abstention figures.",
            "answer accuracy: answerable questions answered (not abstained) with a span from "
            "a gold document containing an answer string.",
        ]
    return notes


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def answer_metrics(results: list[QuestionResult]) -> dict[str, float]:
    """Answer-span accuracy and abstention precision/recall (nan when answers are off)."""
    if any(r.abstained is None for r in results):
        return {}
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    abstained = [r for r in results if r.abstained]
    correct = sum(bool(r.answer_correct) for r in answerable)
    return {
        "answer accuracy": correct / len(answerable) if answerable else math.nan,
        "abstain precision": (
            sum(not r.answerable for r in abstained) / len(abstained) if abstained else math.nan
        ),
        "abstain recall": (
            sum(bool(r.abstained) for r in unanswerable) / len(unanswerable)
            if unanswerable
            else math.nan
        ),
        "wrongly abstained": float(sum(bool(r.abstained) for r in answerable)),
    }


# --- BEIR -------------------------------------------------------------------------------


def _read_jsonl(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path} ({exc}); is it a BEIR dataset folder?") from None


def load_beir_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({exc}); BEIR needs qrels/test.tsv") from None
    for number, line in enumerate(lines, 1):
        parts = line.split("\t")
        if len(parts) < 3 or not line.strip():
            continue
        try:
            score = int(float(parts[2]))
        except ValueError:
            if number == 1:  # a header line (query-id corpus-id score): BEIR files have one
                continue
            raise ConfigError(f"{path}:{number}: the score {parts[2]!r} is not a number") from None
        qrels.setdefault(parts[0], {})[parts[1]] = score
    return qrels


def _doc_file(doc_id: str) -> str:
    return quote(doc_id, safe="") + ".txt"


def materialize_beir_corpus(dataset: Path, cache_dir: Path) -> Path:
    """Write the BEIR corpus as one text file a document under the cache, keyed by the
    corpus file's content hash; a second call with the same corpus does nothing."""
    corpus_file = dataset / "corpus.jsonl"
    try:
        digest = hashlib.sha256(corpus_file.read_bytes()).hexdigest()[:16]
    except OSError as exc:
        raise ConfigError(f"cannot read {corpus_file} ({exc}); is it a BEIR dataset?") from None
    home = cache_dir / "beir" / f"{dataset.resolve().name}-{digest}"
    corpus = home / "corpus"
    done = home / "corpus.complete"
    if not done.exists():
        corpus.mkdir(parents=True, exist_ok=True)
        for row in _read_jsonl(corpus_file):
            title, text = row.get("title") or "", row.get("text") or ""
            body = text if not title or text.startswith(title) else f"{title}\n\n{text}"
            (corpus / _doc_file(str(row["_id"]))).write_text(body + "\n", encoding="utf-8")
        done.touch()
    return home


def fit_queries(queries: dict[str, str], max_chars: int) -> dict[str, str]:
    """Queries as the pipeline accepts them: one longer than `max_chars` (CISI has one of
    2,023 characters) is cut at the last word that fits, with a warning, so that a run
    never stops on one query; a blank one scores as retrieving nothing."""
    fitted, cut = {}, []
    for qid, text in queries.items():
        text = " ".join(text.split())
        if len(text) > max_chars:
            cut.append((qid, len(text)))
            text = text[:max_chars].rsplit(" ", 1)[0] or text[:max_chars]
        fitted[qid] = text
    if cut:
        LOG.warning(
            "%d queries are longer than RAG_MAX_QUESTION_CHARS=%d and were cut to fit "
            "(query %s: %d characters)",
            len(cut),
            max_chars,
            *cut[0],
        )
    return fitted


def evaluate_beir(
    settings: Settings,
    dataset: Path,
    embedder: Embedder,
    modes: Iterable[str] = MODES,
    depth: int = 100,
    build_progress: Progress | None = None,
    tick: Tick | None = None,
) -> EvalReport:
    """Index a BEIR dataset with the same pipeline (cached) and score nDCG@10, MRR@10 and
    Recall@100 against its graded qrels."""
    dataset = Path(dataset)
    queries = {str(q["_id"]): q["text"] for q in _read_jsonl(dataset / "queries.jsonl")}
    qrels = load_beir_qrels(dataset / "qrels" / "test.tsv")
    queries = {qid: text for qid, text in queries.items() if qid in qrels}
    if not queries:
        raise ConfigError(f"{dataset}: no query of queries.jsonl has judgments in qrels/test.tsv")
    queries = fit_queries(queries, settings.max_question_chars)
    home = materialize_beir_corpus(dataset, settings.cache_dir)
    # Built as the product builds (the sentences' vectors are retrieval evidence); only
    # rankings are scored, so no answer is extracted.
    beir_settings = settings.model_copy(
        update={"corpus_dir": home / "corpus", "index_dir": home / "index", "answers": True}
    )
    if settings.backend == "milvus":
        from rag.milvus_pipeline import build_milvus_index

        # The dataset's own collections: RAG_MILVUS_URI may hold the main index under
        # RAG_MILVUS_COLLECTION, which a sync of this corpus would replace.
        name = re.sub(r"[^A-Za-z0-9_]", "_", home.name)[-64:]  # dataset-digest
        prefix = f"{settings.milvus_collection}_beir_{name}"
        beir_settings = beir_settings.model_copy(update={"milvus_collection": prefix})
        # The local build under the cache (shared with the local backend), then its sync.
        build_milvus_index(beir_settings, embedder=embedder, progress=build_progress)
    else:
        build_index(beir_settings, embedder=embedder, progress=build_progress)
    beir_settings = beir_settings.model_copy(update={"answers": False})
    pipeline = Pipeline.open(beir_settings, embedder=embedder)
    # Passages are fetched until `depth` distinct documents are seen (or the corpus ends).
    passages = min(pipeline.index.manifest.chunk_count, depth * 3)
    reports = []
    modes = list(modes)
    for m, mode in enumerate(modes):
        ranked: dict[str, list[str]] = {}
        took: list[float] = []
        for i, (qid, text) in enumerate(queries.items()):
            if not text:
                ranked[qid] = []
                continue
            response = pipeline.ask(text, k=passages, mode=mode)
            ranked[qid] = [unquote(d.removesuffix(".txt")) for d in _ranked_docs(response)][:depth]
            took.append(response.took_ms)
            if tick is not None:
                tick(i + 1 + m * len(queries), len(queries) * len(modes))
        metrics = document_metrics(qrels, ranked, BEIR_MEASURES)
        metrics.update(_latency(took))
        metrics["queries"] = float(len(queries))
        intervals = {
            name: bootstrap_interval(per_query(qrels, ranked, BEIR_MEASURES[name]))
            for name in ("nDCG@10", "MRR@10")
        }
        reports.append(ModeReport(mode=mode, metrics=metrics, intervals=intervals))
    summary = _settings_summary(beir_settings, passages)
    summary["corpus"] = str(dataset)
    summary["passages"] = pipeline.index.manifest.chunk_count
    summary["backend"] = settings.backend
    return EvalReport(
        dataset=f"BEIR {dataset.name}",
        settings=summary,
        created=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        modes=reports,
    )
