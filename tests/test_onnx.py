"""The ONNX query encoder: exported at index time, the same vectors as sentence-transformers,
and the same passages and scores through the pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from rag.onnx_encoder import PROBES, encoder_dir, open_fast_embedder
from rag.pipeline import Pipeline

SENTENCES = [
    *PROBES,
    "Ingrid Betancourt accused the regime of practicing two kinds of terrorism.",
    "",
    "word " * 400,  # longer than the model's 256-token window: truncated alike
]


@pytest.fixture(scope="module")
def fast(seed_index):
    embedder = open_fast_embedder(seed_index.index_dir, seed_index.model)
    assert embedder is not None, "the seed index build should have exported the encoder"
    return embedder


def test_export_sits_beside_the_index(seed_index):
    folder = encoder_dir(seed_index.index_dir, seed_index.model)
    assert {p.name for p in folder.iterdir()} == {"model.onnx", "tokenizer.json", "encoder.json"}


@pytest.mark.parametrize("kind", ["query", "document"])
def test_same_vectors_as_sentence_transformers(fast, real_embedder, kind):
    ours = fast.embed_batch(SENTENCES, kind)
    reference = real_embedder.embed_batch(SENTENCES, kind)
    assert ours.shape == reference.shape and ours.dtype == np.float32
    assert np.min(np.sum(ours * reference, axis=1)) > 0.9999


def test_pipeline_gives_the_same_passages_and_scores(seed_index, seed_pipeline, fast):
    quick = Pipeline.open(seed_index)
    assert type(quick.embedder).__name__ == "OnnxEmbedder"
    for question in ("How far is Camp Ashraf from Baghdad?", "Who leaked the Montazeri tape?"):
        for mode in ("dense", "hybrid"):
            a = quick.ask(question, k=5, mode=mode)
            b = seed_pipeline.ask(question, k=5, mode=mode)
            assert [h.chunk_id for h in a.hits] == [h.chunk_id for h in b.hits]
            assert [h.score for h in a.hits] == pytest.approx([h.score for h in b.hits], abs=1e-4)
            assert (a.answer is None) == (b.answer is None)


def test_without_export_the_pipeline_falls_back(seed_index, tmp_path):
    assert open_fast_embedder(tmp_path, seed_index.model) is None
