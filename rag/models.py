"""The result schema shared by the CLI (`--json`), the HTTP API and the eval harness."""

from __future__ import annotations

from pydantic import BaseModel, Field

from rag.options import Mode


class Location(BaseModel):
    """A citation: where a passage (or answer) sits, `text[start_char:end_char]` of the
    document as read from disk. Hits and answers are locations with more."""

    doc_id: str = Field(description="Path of the document relative to the corpus folder.")
    chunk_id: str = Field(description="`doc_id#ordinal`, stable while the document is unchanged.")
    start_char: int = Field(ge=0)
    end_char: int = Field(ge=0)
    line_start: int = Field(ge=1, description="1-based line of start_char.")
    line_end: int = Field(ge=1, description="1-based line of the last character.")
    doc_sha256: str = Field(description="sha256 of the document file when it was indexed.")
    page: int | None = Field(None, description="1-based page of start_char (PDF).")
    page_end: int | None = Field(
        None,
        description="1-based page of the last character (PDF): after `page` when the span "
        "runs across a page break.",
    )


class Explanation(BaseModel):
    """Why a passage ranked where it did: its place in each ranking that was fused."""

    dense_rank: int | None = Field(
        description="Rank by meaning: the cosine of the passage and of its best sentence with "
        "the question (None: not among the 100 the dense search proposed)."
    )
    dense_score: float | None
    bm25_rank: int | None = Field(
        description="Rank by BM25 (None: no query word matched, or not among its best 100)."
    )
    bm25_score: float | None
    fused_score: float = Field(description="The score the hit was ranked by.")


class Hit(Location):
    """One retrieved passage: its citation (`Location`), the passage, and how it ranked."""

    rank: int = Field(ge=1)
    score: float = Field(
        description="Ranking score: dense evidence (a mix of cosines), BM25 (bm25), or the "
        "fused score (hybrid: z-scores, unbounded, may be negative; RAG_FUSION)."
    )
    title: str
    section: str = Field(description="Heading the passage sits under, else the title.")
    text: str
    also_in: list[Location] = Field(
        default_factory=list,
        description="Other places where the same passage appears (the first 10).",
    )
    also_in_more: int = Field(0, ge=0, description="Further places not listed in also_in.")
    explain: Explanation | None = Field(None, description="Present when asked for.")


class Quote(Location):
    """A span of a document, cited, with its text."""

    text: str


class Answer(Location):
    """The span that answers the question, cited like a hit (`chunk_id`: its passage)."""

    text: str
    title: str
    section: str = Field(description="Heading the answer sits under, else the title.")
    rank: int = Field(ge=1, description="Rank of the passage the answer comes from.")
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: Quote | None = Field(
        None,
        description="When the answer is the heading a sentence sits under (the version and "
        "date of a release note), that sentence, inside the passage ranked `rank`; the "
        "answer's own citation is the heading's.",
    )


class QueryResponse(BaseModel):
    id: str | None = Field(None, description="The question's id, when it came with one.")
    question: str
    mode: Mode = Field("dense", description="Retrieval mode.")
    hits: list[Hit]
    answer: Answer | None = None
    answerable: bool | None = Field(
        None,
        description="False when the corpus does not seem to answer (then `answer` is null); "
        "null when no answer was asked for.",
    )
    took_ms: float


class DocumentInfo(BaseModel):
    """A document as indexed."""

    doc_id: str
    title: str
    size: int = Field(description="Bytes on disk.")
    chunks: int
    sha256: str
    format: str = Field(
        "text",
        description="text (cited by raw offsets), or the reader whose extracted text "
        "citations index into: markdown, html, pdf, docx.",
    )
