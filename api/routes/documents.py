from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.deps import PipelineDep, SettingsDep
from api.models import Span
from rag.corpus import read_document_text
from rag.models import DocumentInfo
from rag.pipeline import Pipeline

router = APIRouter(prefix="/documents", tags=["documents"])


def _info(pipeline: Pipeline, doc_id: str) -> DocumentInfo:
    """Only indexed ids are served: anything else, `../` tricks included, is not found."""
    record = pipeline.index.documents.get(doc_id)
    if record is None:
        raise HTTPException(404, detail=f"Document not found: {doc_id!r} is not in the index")
    return record.info()


@router.get("", response_model=list[DocumentInfo])
def list_documents(pipeline: PipelineDep) -> list[DocumentInfo]:
    """Every indexed document: id, title, size, passages, sha256."""
    return pipeline.documents()


@router.get("/{doc_id:path}/text", response_model=Span, responses={404: {}, 422: {}})
def document_text(
    doc_id: str,
    pipeline: PipelineDep,
    settings: SettingsDep,
    start: Annotated[int | None, Query(ge=0, description="First character (default 0).")] = None,
    end: Annotated[int | None, Query(ge=0, description="End character (default: the end).")] = None,
    context: Annotated[int, Query(ge=0, le=10_000, description="Characters around it.")] = 0,
) -> Span:
    """The text at `start:end` of a document, as a citation points at it."""
    info = _info(pipeline, doc_id)
    text, sha256 = read_document_text(settings.corpus_dir, doc_id)
    lo = 0 if start is None else start
    hi = len(text) if end is None else end
    if not lo < hi <= len(text):
        raise HTTPException(
            422,
            detail=f"span {lo}-{hi} does not fit {doc_id} ({len(text)} characters): "
            f"give 0 <= start < end <= {len(text)}",
        )
    return Span(
        doc_id=doc_id,
        start=lo,
        end=hi,
        text=text[lo:hi],
        before=text[max(0, lo - context) : lo],
        after=text[hi : hi + context],
        doc_sha256=sha256,
        indexed_sha256=info.sha256,
        stale=sha256 != info.sha256,
    )


@router.get("/{doc_id:path}", response_model=DocumentInfo, responses={404: {}})
def get_document(doc_id: str, pipeline: PipelineDep) -> DocumentInfo:
    """One document's metadata."""
    return _info(pipeline, doc_id)
