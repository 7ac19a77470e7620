"""Request and response bodies of the API; query results reuse the library's models."""

from __future__ import annotations

from pydantic import BaseModel, Field

from rag.options import SearchOptions


class QueryRequest(SearchOptions):
    """A question and its search options (rag.options.SearchOptions)."""

    question: str = Field(min_length=1, description="The question; blank ones are refused.")
    k: int | None = Field(
        None, ge=1, le=50, description="Passages to return; RAG_TOP_K when omitted."
    )


class Span(BaseModel):
    """A cited span of a document as it is on disk now, with context around it."""

    doc_id: str
    start: int
    end: int
    text: str
    before: str = Field(description="Up to `context` characters before the span.")
    after: str = Field(description="Up to `context` characters after the span.")
    doc_sha256: str = Field(description="sha256 of the file now.")
    indexed_sha256: str = Field(description="sha256 of the file when it was indexed.")
    stale: bool = Field(
        description="The file changed since indexing: a plain-text file's offsets may not match "
        "any more; other formats are served from the text extracted at index time."
    )
    chars: int = Field(description="Length of the document now, in characters.")
    line_start: int = Field(ge=1, description="1-based line of `start`.")
    line_end: int = Field(ge=1, description="1-based line of the span's last character.")
    page: int | None = Field(None, description="1-based page of `start` (PDF).")
    page_end: int | None = Field(None, description="1-based page of the last character (PDF).")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    build: str | None = None
    documents: int = 0
    chunks: int = 0
    problem: str = ""


class ReloadResult(BaseModel):
    previous: str | None
    current: str
    documents: int
    chunks: int
