"""What the readers extracted from each file, kept beside the index by the file's sha256,
so that a build reads again only the PDFs, web pages, Word and Markdown files that changed
(extraction is the slow part of reading: a long PDF takes seconds, hashing it milliseconds).
A file no reader can read is kept too, with its reason, so it is not retried every build."""

from __future__ import annotations

import gzip
import json
import logging
import os
import tempfile
from pathlib import Path

from rag.readers import READER_VERSION, Extracted, Unreadable
from rag.structure import Block, Layout

LOG = logging.getLogger(__name__)

FOLDER = "extracted"


class ExtractionCache:
    """One gzipped JSON file per (file content, reader version). Entries are written
    atomically (a reader never sees half of one), by any process: a build's workers share
    it. An entry that cannot be read is treated as absent and written again."""

    def __init__(self, index_dir: Path) -> None:
        self.folder = Path(index_dir) / FOLDER

    def _path(self, kind: str, sha256: str) -> Path:
        # The reader is part of the key: the same bytes as `.md` and as `.html` differ.
        return self.folder / f"{kind}-{sha256}-v{READER_VERSION}.json.gz"

    def get(self, kind: str, sha256: str) -> Extracted | Unreadable | None:
        try:
            with gzip.open(self._path(kind, sha256), "rt", encoding="utf-8") as fh:
                entry = json.load(fh)
            if "unreadable" in entry:
                return Unreadable(entry["unreadable"], entry["detail"])
            blocks = tuple(
                Block(start, end, block_kind, label, tuple(map(tuple, sentences)))
                for start, end, block_kind, label, sentences in entry["blocks"]
            )
            layout = Layout(entry["title"], blocks)
            return Extracted(entry["text"], layout, tuple(entry["pages"]))
        except FileNotFoundError:
            return None
        except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            LOG.warning(
                "extraction cache entry %s unreadable (%s): reading the file again",
                sha256[:12],
                exc,
            )
            return None

    def put(self, kind: str, sha256: str, got: Extracted | Unreadable) -> None:
        if isinstance(got, Unreadable):
            entry: dict = {"unreadable": got.reason, "detail": got.detail}
        else:
            entry = {
                "text": got.text,
                "title": got.layout.title,
                "blocks": [
                    [b.start, b.end, b.kind, b.label, [list(s) for s in b.sentences]]
                    for b in got.layout.blocks
                ],
                "pages": list(got.page_starts),
            }
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as fh:
                    fh.write(json.dumps(entry, ensure_ascii=False).encode("utf-8"))
                os.replace(tmp, self._path(kind, sha256))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:  # a cache that cannot be written costs time, not data
            LOG.warning("extraction cache not written (%s)", exc)

    def keep_only(self, files: set[tuple[str, str]]) -> None:
        """Keep the entries of `files` ((reader, sha256) pairs) only: those of files no
        longer in the corpus, and of older readers, go."""
        if not self.folder.is_dir():
            return
        wanted = {self._path(kind, sha256).name for kind, sha256 in files}
        for path in self.folder.iterdir():
            if path.name not in wanted:
                path.unlink(missing_ok=True)
