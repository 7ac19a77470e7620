"""Vectors by content (model + embedded text), kept across builds in the index folder.

Two things need this. A build of a large corpus takes hours on two cores: a kill, a crash
or a full disk must not throw that work away, so each batch of fresh vectors is committed
as soon as it is embedded (one transaction a batch: a kill loses at most the batch in
flight). And switching settings back and forth (chunks of 600, then 400, then 600 again)
must not embed the first corpus twice. The cache is bounded (least recently used rows go
first) and `rag cache --clear` empties it.

SQLite gives crash-safe commits and keyed look-ups with nothing to install; each row
carries a CRC so that a damaged row is embedded again, not reused.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

LOG = logging.getLogger(__name__)

CACHE_FILE = "vector-cache.sqlite"
_LOOKUP_BATCH = 500  # keys per SELECT: under SQLite's limit on bound parameters


class VectorCache:
    """Vectors by vector key (model + embedded text), for one index folder."""

    def __init__(self, index_dir: Path) -> None:
        self.path = Path(index_dir) / CACHE_FILE
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, "
                "vector BLOB NOT NULL, crc INTEGER NOT NULL, used REAL NOT NULL)"
            )
        return self._db

    def find(self, keys: Iterable[str], dimension: int | None = None) -> dict[str, np.ndarray]:
        """The saved vectors among `keys` (all of one dimension; damaged rows left out)."""
        if not self.path.exists():
            return {}
        try:
            db = self._connect()
            wanted = list(keys)
            found: dict[str, np.ndarray] = {}
            for start in range(0, len(wanted), _LOOKUP_BATCH):
                batch = wanted[start : start + _LOOKUP_BATCH]
                marks = ",".join("?" * len(batch))
                rows = db.execute(
                    f"SELECT key, vector, crc FROM vectors WHERE key IN ({marks})", batch
                )
                for key, blob, crc in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if zlib.crc32(blob) == crc and (dimension is None or len(vector) == dimension):
                        found[key] = vector
                        dimension = len(vector)
            with db:  # what was found is recently used: pruned last
                db.execute("BEGIN")
                now = time.time()
                db.executemany(
                    "UPDATE vectors SET used = ? WHERE key = ?", [(now, k) for k in found]
                )
            return found
        except sqlite3.DatabaseError as exc:
            LOG.warning("vector cache unreadable (%s): embedding again", exc)
            self.clear()
            return {}

    def save(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Commit one batch of fresh vectors."""
        rows = []
        now = time.time()
        for key, vector in zip(keys, vectors, strict=True):
            blob = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
            rows.append((key, blob, zlib.crc32(blob), now))
        db = self._connect()
        with db:
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)

    def stats(self) -> tuple[int, int]:
        """(vectors held, bytes on disk)."""
        if not self.path.exists():
            return 0, 0
        count = self._connect().execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        size = sum(p.stat().st_size for p in self._files() if p.exists())
        return int(count), size

    def prune(self, max_bytes: int) -> int:
        """Drop the least recently used vectors beyond `max_bytes` of vector data;
        returns how many were dropped."""
        if not self.path.exists():
            return 0
        db = self._connect()
        count, row_bytes = db.execute(
            "SELECT COUNT(*), COALESCE(AVG(LENGTH(vector)), 0) + 100 FROM vectors"
        ).fetchone()
        keep = int(max_bytes // row_bytes) if row_bytes else count
        if count <= keep:
            return 0
        with db:
            db.execute("BEGIN")
            db.execute(
                "DELETE FROM vectors WHERE key IN "
                "(SELECT key FROM vectors ORDER BY used ASC LIMIT ?)",
                (count - keep,),
            )
        return count - keep

    def _files(self) -> list[Path]:
        return [Path(f"{self.path}{suffix}") for suffix in ("", "-wal", "-shm")]

    def clear(self) -> None:
        """Forget every vector (the file is removed)."""
        if self._db is not None:
            self._db.close()
            self._db = None
        for path in self._files():
            path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
