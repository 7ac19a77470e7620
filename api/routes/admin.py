from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from api.deps import StateDep, require_api_key
from api.models import ReloadResult

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_api_key)])


@router.post("/reload", response_model=ReloadResult, responses={401: {}, 503: {}})
async def reload(state: StateDep) -> ReloadResult:
    """Swap to the index now on disk (after `rag index`). Requests in flight finish on the
    old one; if the new one cannot be loaded, the old one keeps serving."""
    previous, current = await run_in_threadpool(state.reload)
    pipeline = state.pipeline
    assert pipeline is not None  # reload either set it or raised
    return ReloadResult(
        previous=previous,
        current=current,
        documents=len(pipeline.index.documents),
        chunks=len(pipeline.index.chunks),
    )
