"""A model-free embedder for the benchmarks whose subject is the index, not the model:
words hashed into buckets, normalized. Deterministic and instant; `delay` slows each batch
(so that a kill lands mid-build) and the texts embedded are kept (to tell what was
embedded again)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import numpy as np


class HashEmbedder:
    name = "hash"

    def __init__(self, dimension: int = 64, delay: float = 0.0) -> None:
        self.dimension = dimension
        self.delay = delay
        self.embedded = 0
        self.texts: list[str] = []

    def embed_batch(self, texts: Sequence[str], kind: str) -> np.ndarray:
        time.sleep(self.delay)
        if kind == "document":
            self.embedded += len(texts)
            self.texts.extend(texts)
        rows = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
                rows[i, h % self.dimension] += 1.0
            rows[i, 0] += 1e-3  # never a zero vector
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)
