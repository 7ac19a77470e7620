"""The one settings object: read from `RAG_*` environment variables, overridden by CLI flags."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.device import DeviceChoice
from rag.errors import ConfigError
from rag.options import Fusion, Mode
from rag.vector_index import IndexType

Backend = Literal["local", "milvus"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_CORPUS = Path("seeds")
DEFAULT_INDEX = Path("index")
# What an index is built from: written into its manifest, read back by every later command
# on that index (see rag.params); only `rag index` given new values changes them.
BUILD_FIELDS = (
    "corpus_dir",
    "extensions",
    "model",
    "chunk_size",
    "chunk_overlap",
    "bm25_stem",
    "bm25_stopwords",
    "index_type",
    "hnsw_m",
)


class Settings(BaseSettings):
    """Where the corpus and the index live, which model embeds, how text is chunked."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", frozen=True)

    corpus_dir: Path = Field(DEFAULT_CORPUS, description="Folder of documents to index.")
    extensions: str = Field(
        ".txt,.md,.markdown,.html,.htm,.pdf,.docx",
        description="File extensions to read, comma-separated (each needs its reader).",
    )
    index_dir: Path = Field(
        DEFAULT_INDEX,
        description="Folder where the built index lives; by default `index` for the seeds "
        "and `index/corpora/<name>-<hash>` for any other corpus.",
    )
    model: str = Field(
        DEFAULT_MODEL,
        description="sentence-transformers model: the bundled default, a local folder or a name.",
    )
    # Chosen with `rag eval sweep` on eval/questions.jsonl (eval/sweep.md): 600/300 is
    # within one question of the best MRR@10 (400/300) with 38% fewer passages, and ~130
    # word pieces fit MiniLM's 256-token window with room for the section heading.
    chunk_size: int = Field(600, ge=100, le=20_000, description="Largest chunk, in characters.")
    chunk_overlap: int = Field(300, ge=0, description="Characters carried into the next chunk.")
    mode: Mode = Field("hybrid", description="Retrieval mode used when a query names none.")
    # Chosen by cross-validation on the dev questions (eval/retrieval.md): z-score fusion
    # over fixed-depth pools beat min-max and reciprocal rank fusion.
    fusion: Fusion = Field(
        "zscore",
        description="How hybrid fuses: z-scores or min-max of each ranking's own top 100, "
        "or reciprocal ranks.",
    )
    bm25_stem: bool = Field(True, description="Stem words (Snowball English) for BM25.")
    bm25_stopwords: bool = Field(True, description="Drop English stopwords for BM25.")
    max_per_doc: int | None = Field(
        None, ge=1, description="At most this many passages from one document."
    )
    fast_queries: bool = Field(
        True, description="Export the model to ONNX at index time and answer with it."
    )
    answers: bool = Field(True, description="Extract the answering sentence (and abstain).")
    # Fitted by `rag eval calibrate` (eval/abstention.md): the confidence below which the
    # most unanswerable dev questions are turned away, at most 5% of the answerable ones.
    answer_threshold: float = Field(
        0.434, ge=0.0, le=1.0, description="Least confidence for an answer; below it, abstain."
    )
    index_type: IndexType = Field(
        "auto",
        description="Dense search structure; auto: flat up to 100k passages, IVF-PQ beyond "
        "(bench/SCALE.md).",
    )
    hnsw_m: int = Field(32, ge=4, le=128, description="HNSW links per vector (build time).")
    hnsw_ef_search: int = Field(
        256, ge=8, le=4096, description="HNSW candidates explored per question."
    )
    ivf_nprobe: int = Field(32, ge=1, le=65536, description="IVF lists searched per question.")
    batch_size: int = Field(32, ge=1, le=4096, description="Texts embedded per model call.")
    device: DeviceChoice = Field(
        "auto",
        description="Where the model embeds: auto picks a CUDA GPU when torch sees one "
        "(half precision and larger batches there), else the CPU.",
    )
    read_workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Processes extracting PDF, web, Word and Markdown files while the model "
        "embeds; default one per core, 1 reads in the building process.",
    )
    vector_cache_mb: int = Field(
        2048,
        ge=0,
        description="Vectors kept across builds (index/vector-cache.sqlite), least recently "
        "used dropped first; 0 keeps none once a build is published.",
    )
    # Where the index is served from: a deployment setting, like host and port, not a build
    # parameter (the same passages and vectors go to either; the Milvus collections keep
    # their own manifest, so a machine with only the URI can serve them; rag.milvus_store).
    backend: Backend = Field(
        "local", description="local: the index folder (FAISS + bm25s); milvus: a Milvus store."
    )
    milvus_uri: str | None = Field(
        None,
        description="Milvus Lite folder (a path, e.g. ./milvus.db) or server URI "
        "(http://host:19530); default <index_dir>/milvus.db.",
    )
    milvus_token: SecretStr | None = Field(
        None, description="Milvus server token: `user:password` or an API key."
    )
    milvus_collection: str = Field(
        "rag",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$",
        description="Prefix of the index's Milvus collections (one set per index).",
    )
    top_k: int = Field(5, ge=1, le=50, description="Passages returned by default.")
    max_question_chars: int = Field(2000, ge=1, description="Longest question accepted.")
    host: str = Field("127.0.0.1", description="Address `rag serve` listens on.")
    port: int = Field(8000, ge=0, le=65535, description="Port `rag serve` listens on.")
    api_key: SecretStr | None = Field(
        None, description="When set, admin routes need it in the X-API-Key header."
    )
    api_key_all_routes: bool = Field(
        False, description="Require the API key on every route but /health and /ready."
    )
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body.")
    request_timeout: float = Field(
        10.0, gt=0, le=3600, description="Seconds a client has to send a whole request."
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "rag",
        description="Where evaluation datasets are indexed, once per content hash.",
    )

    @model_validator(mode="after")
    def _index_per_corpus(self) -> Settings:
        """Another corpus gets its own default index folder, so that `--corpus other/`
        never replaces the index of the seeds (or of a third corpus)."""
        if "index_dir" not in self.model_fields_set:
            object.__setattr__(self, "index_dir", default_index_dir(self.corpus_dir))
        return self

    @property
    def extension_list(self) -> tuple[str, ...]:
        """`extensions` as lower-case suffixes with their dot."""
        parts = (p.strip().lower() for p in self.extensions.split(","))
        return tuple(p if p.startswith(".") else f".{p}" for p in parts if p)

    @model_validator(mode="after")
    def _known_extensions(self) -> Settings:
        from rag.corpus import DOCUMENT_SUFFIXES

        unknown = [e for e in self.extension_list if e not in DOCUMENT_SUFFIXES]
        if unknown or not self.extension_list:
            raise ValueError(
                f"extensions {', '.join(unknown) or '(none)'} cannot be read; choose among "
                + ", ".join(DOCUMENT_SUFFIXES)
            )
        return self

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than "
                f"chunk_size ({self.chunk_size})"
            )
        return self


def default_index_dir(corpus_dir: Path) -> Path:
    """`index` for the seed corpus, `index/corpora/<name>-<hash of its real path>` else."""
    real = Path(corpus_dir).expanduser().resolve()
    if real == DEFAULT_CORPUS.resolve():
        return DEFAULT_INDEX
    key = hashlib.sha256(str(real).encode()).hexdigest()[:8]
    return DEFAULT_INDEX / "corpora" / f"{real.name or 'root'}-{key}"


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment plus explicit overrides (None means not given)."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: "
            + err["msg"].removeprefix("Value error, ")
            for err in exc.errors()
        )
        message = f"invalid settings ({problems}); fix the RAG_* variable or flag"
        raise ConfigError(message) from None
