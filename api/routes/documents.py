from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.deps import PipelineDep
from api.models import Span
from rag.manifest import DocumentRecord
from rag.models import DocumentInfo
from rag.pipeline import Pipeline
from rag.sources import read_cited_span

router = APIRouter(prefix="/documents", tags=["documents"])


def _record(pipeline: Pipeline, doc_id: str) -> DocumentRecord:
    """Only indexed ids are served: anything else, `../` tricks included, is not found."""
    record = pipeline.index.documents.get(doc_id)
    if record is None:
        why = pipeline.index.manifest.not_indexed(doc_id)
        raise HTTPException(404, detail=f"Document not found: {why}")
    return record


@router.get("", response_model=list[DocumentInfo])
def list_documents(pipeline: PipelineDep) -> list[DocumentInfo]:
    """Every indexed document: id, title, size, passages, sha256."""
    return pipeline.documents()


@router.get("/{doc_id:path}/text", response_model=Span, responses={404: {}, 422: {}, 503: {}})
def document_text(
    doc_id: str,
    pipeline: PipelineDep,
    start: Annotated[int | None, Query(ge=0, description="First character (default 0).")] = None,
    end: Annotated[int | None, Query(ge=0, description="End character (default: the end).")] = None,
    context: Annotated[int, Query(ge=0, le=10_000, description="Characters around it.")] = 0,
) -> Span:
    """The text at `start:end` of a document, as a citation points at it, read from the
    file now (only the blocks that hold it), or for a PDF, web page, Word or Markdown file
    from the text its reader extracted at index time; `stale` when the file changed since
    indexing."""
    record = _record(pipeline, doc_id)
    span = read_cited_span(
        pipeline.settings.corpus_dir, record, start, end, context, build=pipeline.index.path
    )
    pages = record.pages(span.start, span.end)
    return Span(
        **{name: getattr(span, name) for name in Span.model_fields if name not in pages}, **pages
    )


@router.get("/{doc_id:path}", response_model=DocumentInfo, responses={404: {}})
def get_document(doc_id: str, pipeline: PipelineDep) -> DocumentInfo:
    """One document's metadata."""
    return _record(pipeline, doc_id).info()
