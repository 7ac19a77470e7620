"""Passages per second by stage of a build, on the CPU and (where torch sees one) a CUDA
GPU, in one run: reading (rag.reading, worker processes), cutting into passages, the
model's tokenizer, and embedding (RAG_DEVICE=cpu against cuda, half precision where it
keeps the vectors). A GPU only helps while reading and tokenizing keep up: the stages are
side by side so that the slowest shows. Prints Markdown and writes bench/EMBED_DEVICE.md.

Usage: .venv/bin/python bench/embed_device.py [CORPUS]   (default: seeds/)"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.corpus import Document, list_document_files  # noqa: E402
from rag.embedding import SentenceTransformerEmbedder  # noqa: E402
from rag.passages import index_document  # noqa: E402
from rag.readers import READERS  # noqa: E402
from rag.reading import default_workers, read_documents  # noqa: E402
from rag.settings import load_settings  # noqa: E402


def timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def main() -> None:
    import torch

    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "seeds"
    settings = load_settings(corpus_dir=corpus)
    stamps = list_document_files(corpus)
    extracted = sum(1 for s in stamps if s.path.suffix.lower() in READERS)
    reading = f"{default_workers()} worker processes" if extracted > 1 else "this process"
    docs, read_s = timed(lambda: list(read_documents(stamps, corpus)))
    docs = [d for d in docs if isinstance(d, Document)]
    parts, chunk_s = timed(lambda: [index_document(d, settings) for d in docs])
    texts = [text for _, _, to_embed in parts for text in to_embed.values()]
    n = len(texts)
    rows = [
        ["read", reading, f"{n / read_s:,.0f}"],
        ["cut into passages", "this process", f"{n / chunk_s:,.0f}"],
    ]
    cpu = SentenceTransformerEmbedder(settings.model, "cpu")
    tokenizer = cpu.load().tokenizer
    _, token_s = timed(lambda: tokenizer(texts, truncation=True, max_length=256))
    rows.append(["tokenize", "fast tokenizer", f"{n / token_s:,.0f}"])
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        embedder = SentenceTransformerEmbedder(settings.model, device)  # type: ignore[arg-type]
        embedder.embed_batch(texts[:64], "document")  # load and warm up
        batch = embedder.preferred_batch(settings.batch_size)

        def embed(embedder=embedder, batch=batch) -> None:
            for start in range(0, n, batch):
                embedder.embed_batch(texts[start : start + batch], "document")

        _, embed_s = timed(embed)
        precision = "half" if embedder.half else "full"
        rows.append(
            [f"embed ({device})", f"batch {batch}, {precision} precision", f"{n / embed_s:,.0f}"]
        )
    if len(devices) == 1:
        rows.append(["embed (cuda)", "no CUDA GPU seen by torch on this machine", "-"])
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    machine = f"{platform.machine()}, {os.cpu_count()} cores, GPU: {gpu}, torch {torch.__version__}"
    text = "\n\n".join(
        [
            "# Build stages, CPU and GPU",
            f"`bench/embed_device.py {os.path.relpath(corpus, ROOT)}` on {machine}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {n:,} passages of "
            f"{len(docs)} documents, passages per second by stage.",
            tabulate(rows, ["stage", "how", "passages/s"], tablefmt="github"),
        ]
    )
    print(text)
    (ROOT / "bench" / "EMBED_DEVICE.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
