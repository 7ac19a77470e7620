"""Where the model embeds: the CPU, or a CUDA GPU when torch sees one (`RAG_DEVICE`).

On a GPU the model runs in half precision when that keeps every vector of a probe set
within cosine 0.999 of full precision (MiniLM does; a model that does not stays in full
precision), and the batch grows with the GPU's free memory. sentence-transformers already
sorts each call's texts by length, so batches of a GPU call hold texts of like lengths.
On the CPU nothing changes."""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np

from rag.errors import ConfigError

LOG = logging.getLogger(__name__)

DeviceChoice = Literal["auto", "cpu", "cuda"]

# Least cosine between a text's half- and full-precision vectors for half to be used.
HALF_MIN_COSINE = 0.999
# Memory one text of a batch may take on the GPU (MiniLM at 256 tokens needs far less:
# activations of ~6 layers x 256 tokens x 384 floats, a few MB with attention): a bound
# that leaves most free memory to other work.
BYTES_PER_TEXT = 8 * 2**20
MAX_GPU_BATCH = 1024
PROBE = [
    "How far is Camp Ashraf from Baghdad?",
    "The telescope's panels are steered by winches under the dish.",
    "Drop support for Python 3.7, require Python 3.8 or above.",
    "$ docker run -d --name mycontainer -p 80:80 myimage",
    "Leaves | Ash, Elm, Maple | 50",
    "A standing trustee's percentage fee is fixed by the United States Trustee.",
]


def resolve_device(choice: DeviceChoice, cuda_available: bool) -> str:
    """The torch device for `choice`: auto picks CUDA when torch sees a GPU."""
    if choice == "cpu":
        return "cpu"
    if choice == "cuda" and not cuda_available:
        raise ConfigError(
            "RAG_DEVICE=cuda but torch sees no CUDA GPU here: set RAG_DEVICE=auto or cpu"
        )
    return "cuda" if cuda_available else "cpu"


def half_is_faithful(full: np.ndarray, half: np.ndarray) -> bool:
    """Whether half-precision vectors stay within HALF_MIN_COSINE of full precision ones
    (both row-normalized), text by text."""
    full = np.asarray(full, dtype=np.float32)
    half = np.asarray(half, dtype=np.float32)
    cosines = np.sum(full * half, axis=1) / (
        np.linalg.norm(full, axis=1) * np.linalg.norm(half, axis=1) + 1e-12
    )
    return bool(len(cosines)) and float(cosines.min()) >= HALF_MIN_COSINE


def gpu_batch_size(free_bytes: int, configured: int) -> int:
    """Texts per model call on a GPU: as many as its free memory allows at BYTES_PER_TEXT,
    at least the configured batch and at most MAX_GPU_BATCH."""
    return max(configured, min(MAX_GPU_BATCH, free_bytes // BYTES_PER_TEXT))


def prepare_for_gpu(model: Any) -> bool:
    """Switch a sentence-transformers model on a GPU to half precision if the probe texts
    keep their vectors; True when it did."""
    kwargs = {"normalize_embeddings": True, "convert_to_numpy": True, "show_progress_bar": False}
    full = model.encode(PROBE, **kwargs)
    model.half()
    if half_is_faithful(full, model.encode(PROBE, **kwargs)):
        LOG.info(
            "embedding in half precision on the GPU (probe vectors within %s)", HALF_MIN_COSINE
        )
        return True
    model.float()
    LOG.info("embedding in full precision on the GPU (half moved the probe vectors)")
    return False
