"""Where the model embeds (RAG_DEVICE): the choice with torch's reported availability
mocked, half precision kept only when it keeps the vectors, GPU batches by free memory. The
tests run without a GPU; bench/embed_device.py measures one where there is."""

from __future__ import annotations

import numpy as np
import pytest

from rag.device import (
    HALF_MIN_COSINE,
    MAX_GPU_BATCH,
    gpu_batch_size,
    half_is_faithful,
    prepare_for_gpu,
    resolve_device,
)
from rag.embedding import SentenceTransformerEmbedder, embedder_for
from rag.errors import ConfigError
from rag.settings import load_settings


@pytest.mark.parametrize(
    ("choice", "available", "device"),
    [("auto", True, "cuda"), ("auto", False, "cpu"), ("cpu", True, "cpu"), ("cuda", True, "cuda")],
)
def test_the_device_follows_the_setting_and_what_torch_sees(choice, available, device):
    assert resolve_device(choice, available) == device


def test_cuda_asked_without_a_gpu_is_a_one_line_error():
    with pytest.raises(ConfigError, match="RAG_DEVICE=cuda but torch sees no CUDA GPU"):
        resolve_device("cuda", False)


def test_auto_loads_on_the_cpu_when_torch_sees_no_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    embedder = embedder_for(load_settings(device="auto"))
    assert embedder.device == "auto"  # resolved when the model loads, not before
    vector = embedder.embed_batch(["a question"], "query")
    assert embedder.device == "cpu" and not embedder.half and vector.shape == (1, 384)
    assert embedder.preferred_batch(32) == 32


def test_half_precision_only_when_it_keeps_the_vectors():
    full = SentenceTransformerEmbedder().embed_batch(["ducks on a lake", "a 737 MAX"], "document")
    as_half = full.astype(np.float16)  # what a half-precision model's rounding does at most
    assert half_is_faithful(full, as_half)
    rng = np.random.default_rng(0)
    moved = full + rng.normal(0, 0.05, full.shape).astype(np.float32)
    assert not half_is_faithful(full, moved)
    assert not half_is_faithful(full[:0], as_half[:0])  # nothing probed: not shown faithful


class _Model:
    """Stands in for a sentence-transformers model on a GPU: encode, half, float."""

    def __init__(self, drift: float) -> None:
        self.drift, self.halved = drift, False

    def encode(self, texts, **_):
        vectors = np.eye(len(texts), 8, dtype=np.float32)
        return vectors + (self.drift if self.halved else 0.0)

    def half(self):
        self.halved = True

    def float(self):
        self.halved = False


def test_a_model_that_half_precision_moves_stays_in_full_precision():
    assert prepare_for_gpu(_Model(drift=0.0)) is True
    model = _Model(drift=0.1)
    assert prepare_for_gpu(model) is False and not model.halved
    assert HALF_MIN_COSINE == 0.999


def test_gpu_batches_grow_with_free_memory_within_bounds():
    assert gpu_batch_size(0, 32) == 32
    assert gpu_batch_size(2**30, 32) == 128
    assert gpu_batch_size(10**12, 32) == MAX_GPU_BATCH
