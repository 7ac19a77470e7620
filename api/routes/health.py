from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import StateDep
from api.models import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health() -> Health:
    """The process is up (it may still be loading)."""
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
def ready(state: StateDep):
    """200 once the index and model are loaded and queries can be answered, else 503."""
    pipeline = state.pipeline
    if pipeline is None:
        return JSONResponse(Readiness(ready=False, problem=state.problem).model_dump(), 503)
    return Readiness(
        ready=True,
        build=pipeline.index.path.name,
        documents=len(pipeline.index.documents),
        chunks=len(pipeline.index.chunks),
    )
