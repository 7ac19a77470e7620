"""What the model reads: pieces its vocabulary lacks are left out of its input only."""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer

from rag.embedding import SentenceTransformerEmbedder, resolve_model_path, vector_key
from rag.model_text import EMBED_TEXT_VERSION, ModelReader


def bundled_tokenizer() -> Tokenizer:
    return Tokenizer.from_file(f"{resolve_model_path('all-MiniLM-L6-v2')}/tokenizer.json")


def test_unknown_pieces_are_left_out_and_the_rest_kept_exactly():
    read = ModelReader(bundled_tokenizer())
    texts = [
        "- ⬆️ Drop support for Python 3.7 🔥 now.",
        "plain words, “quotes” — and café",
        "🔥🔥",  # nothing readable: the text stays, the model has to read something
        "",
    ]
    assert read(texts) == [
        "- ️ Drop support for Python 3.7  now.",
        "plain words, “quotes” — and café",
        "🔥🔥",
        "",
    ]


def test_a_truncating_tokenizer_is_not_changed_and_long_texts_are_read_whole():
    tokenizer = bundled_tokenizer()
    tokenizer.enable_truncation(max_length=8)
    read = ModelReader(tokenizer)
    long = "word " * 50 + "🔥 end"
    assert read([long]) == ["word " * 50 + " end"]
    assert tokenizer.truncation["max_length"] == 8  # the caller's tokenizer is its own


def test_the_model_gives_a_text_with_emoji_the_vector_of_the_text_without():
    embedder = SentenceTransformerEmbedder()
    with_emoji, without = embedder.embed_batch(
        ["⬆️ Drop support for Python 3.7.", " Drop support for Python 3.7."], "document"
    )
    assert float(np.dot(with_emoji, without)) > 0.9999


def test_vectors_embedded_from_other_model_input_are_not_reused():
    assert EMBED_TEXT_VERSION >= 2
    assert vector_key("m", "text") != vector_key("other", "text")
