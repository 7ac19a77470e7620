"""Which build parameters a command uses: an index remembers what it was built from.

`rag index --chunk-size 400` builds an index; a later `rag ask` or `rag serve` with default
settings uses it as built (chunks of 400) instead of rebuilding with 600. Only `rag index`
given other values (flags or RAG_* variables) rebuilds, and says what changed. A query-time
command given build values that contradict the index stops with one line that says how to
rebuild, rather than silently re-embedding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.errors import ConfigError
from rag.manifest import Manifest
from rag.settings import BUILD_FIELDS, Settings
from rag.store import live_manifest
from rag.vector_index import choose_type


def build_settings_of(settings: Settings) -> dict[str, Any]:
    """The build parameters of `settings`, as the manifest stores them."""
    values = settings.model_dump(include=set(BUILD_FIELDS), mode="json")
    values["corpus_dir"] = str(Path(settings.corpus_dir).expanduser().resolve())
    return values


def _same(manifest: Manifest, name: str, built: Any, given: Any) -> bool:
    if name == "corpus_dir":
        return Path(str(given)).expanduser().resolve() == Path(built)
    if name == "index_type":  # "auto" and the structure it chose are the same index
        return built == given or choose_type(given, manifest.chunk_count) == manifest.index_type
    return built == given


def differences(manifest: Manifest, settings: Settings, names: set[str]) -> dict[str, tuple]:
    """The build parameters among `names` whose value in `settings` is not the index's:
    name -> (as built, as given)."""
    given = build_settings_of(settings)
    return {
        name: (manifest.build_settings[name], given[name])
        for name in sorted(names)
        if name in manifest.build_settings
        and not _same(manifest, name, manifest.build_settings[name], given[name])
    }


def settings_as_built(settings: Settings) -> Settings:
    """`settings` with the build parameters of the index in `settings.index_dir`, for a
    command that answers from it. Build values given explicitly that contradict the
    index are an error (the index is rebuilt only by `rag index`)."""
    manifest = live_manifest(settings.index_dir)
    if manifest is None or not manifest.build_settings:
        return settings
    explicit = set(BUILD_FIELDS) & settings.model_fields_set
    conflicts = differences(manifest, settings, explicit)
    if conflicts:
        said = ", ".join(f"{n} {built} (given {given})" for n, (built, given) in conflicts.items())
        raise ConfigError(
            f"the index in {settings.index_dir} was built with {said}: run `rag index` with "
            "those settings to rebuild it, or leave them out to use the index as built"
        )
    return settings.model_copy(update=_typed(manifest.build_settings))


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    """Manifest values as settings fields (model_copy does not validate)."""
    return {k: Path(v) if k == "corpus_dir" else v for k, v in values.items()}


def settings_for_build(settings: Settings) -> Settings:
    """The settings `rag index` builds with: the values given (flags, RAG_* variables),
    and for the rest those the index was built with."""
    manifest = live_manifest(settings.index_dir)
    if manifest is None or not manifest.build_settings:
        return settings
    explicit = set(BUILD_FIELDS) & settings.model_fields_set
    kept = {k: v for k, v in manifest.build_settings.items() if k not in explicit}
    return settings.model_copy(update=_typed(kept))
