"""Vectors embedded by a build that has not been published yet, saved as it goes.

A build of a large corpus takes hours on two cores; a kill, a crash or a full disk must
not throw that work away. Each batch of fresh vectors is committed to a SQLite file in the
index folder (one transaction a batch, so a kill loses at most the batch in flight); the
next build looks there before embedding, and the file is removed once a build publishes.
SQLite is used because it gives crash-safe commits and keyed look-ups with nothing to
install; each row carries a CRC so that a damaged row is embedded again, not reused.
"""

from __future__ import annotations

import logging
import sqlite3
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

LOG = logging.getLogger(__name__)

CHECKPOINT_FILE = "embedding-checkpoint.sqlite"
_LOOKUP_BATCH = 500  # keys per SELECT: under SQLite's limit on bound parameters


class EmbeddingCheckpoint:
    """Vectors by vector key (model + embedded text), for one index folder."""

    def __init__(self, index_dir: Path) -> None:
        self.path = Path(index_dir) / CHECKPOINT_FILE
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors "
                "(key TEXT PRIMARY KEY, vector BLOB NOT NULL, crc INTEGER NOT NULL)"
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
            return found
        except sqlite3.DatabaseError as exc:
            LOG.warning("embedding checkpoint unreadable (%s): embedding again", exc)
            self.discard()
            return {}

    def save(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Commit one batch of fresh vectors."""
        rows = []
        for key, vector in zip(keys, vectors, strict=True):
            blob = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
            rows.append((key, blob, zlib.crc32(blob)))
        db = self._connect()
        with db:
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)

    def discard(self) -> None:
        """Forget everything: the published build now holds these vectors."""
        if self._db is not None:
            self._db.close()
            self._db = None
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
