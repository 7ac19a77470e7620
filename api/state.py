"""What the server holds: the settings and the live pipeline, swapped whole on reload."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from rag.embedding import Embedder, embedder_for
from rag.errors import RagError
from rag.params import settings_as_built
from rag.pipeline import Pipeline, ensure_index
from rag.settings import Settings

LOG = logging.getLogger(__name__)


@dataclass
class ServerState:
    """`pipeline` is replaced by one assignment: a request that took the old one finishes
    on it, the next one gets the new one. Nothing is mutated in place."""

    settings: Settings
    embedder: Embedder | None = None
    pipeline: Pipeline | None = None
    problem: str = "loading the index and the model"
    loading: bool = True  # the first load has not ended (a failed one ends it too)
    _reload_lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self) -> None:
        """Build the index if there is none (or the corpus changed), then load it. Holds
        the reload lock: a reload asked for meanwhile waits, and then loads after it."""
        with self._reload_lock:
            self._load()

    def _load(self) -> None:
        try:
            self.settings = settings_as_built(self.settings)  # the index as it was built
            builder = embedder_for(self.settings)
            ensure_index(self.settings, embedder=builder)
            self.pipeline = Pipeline.open(
                self.settings, embedder=self.embedder or (builder if builder.loaded else None)
            )
            self.embedder = self.pipeline.embedder
            self.problem = ""
            LOG.info("ready: %s", self.pipeline.index.path.name)
        except RagError as exc:
            self.problem = str(exc)
            LOG.error("not ready: %s", exc)
        except Exception as exc:  # noqa: BLE001 - /ready must report it, not a dead thread
            self.problem = f"{type(exc).__name__}: {exc}"
            LOG.exception("not ready")
        finally:
            self.loading = False

    def reload(self) -> tuple[str | None, str]:
        """Load the live index from disk and swap to it; the old one serves until then.
        Returns (previous build, new build). Raises RagError, keeping the old pipeline."""
        with self._reload_lock:
            previous = self.pipeline.index.path.name if self.pipeline else None
            fresh = Pipeline.open(self.settings, embedder=self.embedder)
            self.pipeline = fresh
            self.problem = ""
            return previous, fresh.index.path.name
