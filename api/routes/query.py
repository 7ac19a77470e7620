from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PipelineDep
from api.models import QueryRequest
from rag.models import QueryResponse
from rag.options import Mode

router = APIRouter(tags=["query"])

_ERRORS = {
    404: {"description": "A document in `doc_ids` is not in the index"},
    413: {"description": "Body over the size limit"},
    422: {"description": "Blank or over-long question, or a parameter out of range"},
    503: {"description": "The index is still loading"},
}


# Plain `def`: FastAPI runs it in its thread pool, so embedding never blocks the event loop.
@router.post("/query", response_model=QueryResponse, responses=_ERRORS)
def query(body: QueryRequest, pipeline: PipelineDep) -> QueryResponse:
    """The passages that answer `question`, each with an exact citation."""
    return pipeline.ask(body.question, **body.model_dump(exclude={"question"}))


@router.get("/query", response_model=QueryResponse, responses=_ERRORS)
def query_get(
    pipeline: PipelineDep,
    q: Annotated[str, Query(min_length=1, description="The question.")],
    k: Annotated[int | None, Query(ge=1, le=50, description="Passages (RAG_TOP_K).")] = None,
    min_score: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    mode: Annotated[Mode | None, Query()] = None,
    explain: Annotated[bool, Query()] = False,
    max_per_doc: Annotated[
        int | None, Query(ge=1, le=50, description="At most this many passages per document.")
    ] = None,
    doc_ids: Annotated[
        list[str] | None, Query(max_length=1000, description="Search only these documents.")
    ] = None,
) -> QueryResponse:
    """The same as POST /query, for a browser or curl: `/query?q=...&k=3&mode=bm25`
    (`doc_ids` repeated for several documents)."""
    return pipeline.ask(
        q,
        k=k,
        min_score=min_score,
        mode=mode,
        explain=explain,
        max_per_doc=max_per_doc,
        doc_ids=doc_ids,
    )
