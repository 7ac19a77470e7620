"""A fast path for questions: the embedding model exported once to ONNX at index time and
run with onnxruntime and tokenizers, so that answering imports neither torch nor
sentence-transformers (about 10 s on these machines). The export is kept only when it
gives the same vectors as sentence-transformers (cosine > 0.9999 on probe sentences)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.embedding import SentenceTransformerEmbedder, TextKind, resolve_model_path
from rag.model_text import ModelReader
from rag.settings import Settings

LOG = logging.getLogger(__name__)

ENCODERS = "encoders"  # folder under the index folder, one subfolder per model
_MODEL_FILE = "model.onnx"
_TOKENIZER_FILE = "tokenizer.json"
_CONFIG_FILE = "encoder.json"
PROBES = [
    "How far is Camp Ashraf from Baghdad?",
    "Amnesty International published its report on the 1988 massacre.",
    "Who leaked the audio tape?",
    "A shock wave forms ahead of a blunt body at high Mach numbers, as the experiments show.",
    "کمپ اشرف کجاست؟ 😀",
]
MIN_AGREEMENT = 0.9999


def encoder_dir(index_dir: Path, model: str) -> Path:
    key = hashlib.sha256(model.encode()).hexdigest()[:12]
    return Path(index_dir) / ENCODERS / key


_STAGING = ".tmp"  # an export is written to `<folder>.tmp<pid>`, then renamed


def remove_abandoned_exports(index_dir: Path) -> list[Path]:
    """Delete the staging folders of exports whose process is gone (killed mid-export:
    ~90 MB each); those of a live process are left alone. Returns what was removed."""
    removed = []
    for staging in (Path(index_dir) / ENCODERS).glob(f"*{_STAGING}*"):
        pid = staging.name.rpartition(_STAGING)[2]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)
            removed.append(staging)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def export_encoder(model: str, st_model, target: Path) -> bool:
    """Export `model` (already loaded as `st_model`) to ONNX under `target`; True when the
    export agrees with sentence-transformers and was kept."""
    import warnings

    import torch

    modules = list(st_model)
    transformer, pooling = modules[0], modules[1] if len(modules) > 1 else None
    mode = getattr(pooling, "pooling_mode", None) or (
        "mean" if getattr(pooling, "pooling_mode_mean_tokens", False) else None
    )
    if mode != "mean":
        LOG.info("no ONNX export: only mean-pooled models are exported")
        return False
    hf_model = transformer.auto_model
    normalize = any(type(m).__name__ == "Normalize" for m in modules[2:])

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = hf_model

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            return pooled

    source = Path(resolve_model_path(model))
    if not (source / _TOKENIZER_FILE).is_file():
        LOG.info("no ONNX export: %s has no tokenizer.json", source)
        return False
    staging = target.with_name(f"{target.name}{_STAGING}{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    encoded = st_model.tokenizer(["probe sentence"], return_tensors="pt")
    inputs = (
        encoded["input_ids"],
        encoded["attention_mask"],
        encoded.get("token_type_ids", torch.zeros_like(encoded["input_ids"])),
    )
    axes = {
        "input_ids": {0: "b", 1: "t"},
        "attention_mask": {0: "b", 1: "t"},
        "token_type_ids": {0: "b", 1: "t"},
        "embedding": {0: "b"},
    }
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on opsets and tracing
        torch.onnx.export(
            MeanPooled().eval(),
            inputs,
            str(staging / _MODEL_FILE),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["embedding"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    shutil.copy(source / _TOKENIZER_FILE, staging / _TOKENIZER_FILE)
    config = {"model": model, "max_length": int(st_model.max_seq_length), "normalize": normalize}
    (staging / _CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
    fast = OnnxEmbedder(staging)
    readable = ModelReader(st_model.tokenizer.backend_tokenizer)  # as the embedder reads them
    reference = st_model.encode(
        readable(PROBES), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    agreement = float(np.min(np.sum(fast.embed_batch(PROBES, "query") * reference, axis=1)))
    if agreement < MIN_AGREEMENT:
        LOG.warning("ONNX export dropped: cosine %.6f with sentence-transformers", agreement)
        shutil.rmtree(staging, ignore_errors=True)
        return False
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, target)
    return True


class OnnxEmbedder:
    """The exported encoder: tokenizers + onnxruntime, no torch."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        config = json.loads((folder / _CONFIG_FILE).read_text(encoding="utf-8"))
        self.name = config["model"]
        self._tokenizer = Tokenizer.from_file(str(folder / _TOKENIZER_FILE))
        self._tokenizer.enable_truncation(max_length=config["max_length"])
        self._tokenizer.enable_padding()
        self._readable = ModelReader(self._tokenizer)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(folder / _MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self._normalize = bool(config["normalize"])
        self._dimension: int | None = None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self.embed_batch(["dimension probe"], "query").shape[1])
        return self._dimension

    def embed_batch(self, texts: Sequence[str], kind: TextKind) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(self._readable(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (vectors,) = self._session.run(
            ["embedding"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )
        vectors = np.asarray(vectors, dtype=np.float32)
        if not self._normalize:
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
        return np.ascontiguousarray(vectors)


def open_fast_embedder(index_dir: Path, model: str) -> OnnxEmbedder | None:
    """The exported encoder for `model`, or None (not exported, or onnxruntime missing)."""
    folder = encoder_dir(index_dir, model)
    if not (folder / _CONFIG_FILE).is_file():
        return None
    try:
        return OnnxEmbedder(folder)
    except (ImportError, OSError, ValueError, RuntimeError) as exc:
        LOG.warning("ONNX encoder not usable (%s): using sentence-transformers", exc)
        return None


def export_fast_encoder(settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    """Export the query encoder to ONNX once per model (loading the model if need be)."""
    target = encoder_dir(settings.index_dir, settings.model)
    if target.exists():
        return
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return
    try:
        model = embedder.load()
        if embedder.device != "cpu" or embedder.half:  # the CPU runs the export: float32
            import copy

            model = copy.deepcopy(model).float().cpu()
        if export_encoder(settings.model, model, target):
            LOG.info("exported the query encoder to %s", target)
    except Exception as exc:  # noqa: BLE001 - the slow path still works; say why once
        LOG.warning("ONNX export failed (%s): questions use sentence-transformers", exc)
