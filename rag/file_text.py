"""A document file's text by character offsets: decoding as citations expect, checkpoints
that let a span be read without decoding the whole file, and the one definition of
whether a file changed since it was indexed."""

from __future__ import annotations

import codecs
import hashlib
import os
import threading
from collections import OrderedDict
from typing import BinaryIO

# Every this many bytes a (character, byte, line) triple is recorded, so that a cited span
# of a large file is read from the nearest one instead of decoding the file from its start.
CHECKPOINT_BYTES = 1 << 16
_READ_BLOCK = 1 << 20
_HASH_BLOCK = 1 << 20


def decode_document_bytes(data: bytes) -> str:
    """Decode as citations expect: UTF-8, invalid bytes replaced by U+FFFD, nothing else changed."""
    return data.decode("utf-8", errors="replace")


def _decoder() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")(errors="replace")


def char_checkpoints(data: bytes, every: int = CHECKPOINT_BYTES) -> list[tuple[int, int, int]]:
    """(character offset, byte offset, line number) triples at which decoding may start
    afresh and give the same characters as decoding the whole file: the decoder holds
    nothing there but the bytes of a character not yet complete, which are decoded again
    from that byte."""
    decoder = _decoder()
    points = [(0, 0, 1)]
    chars, line = 0, 1
    for start in range(0, len(data), every):
        chars += len(decoder.decode(data[start : start + every]))
        if start + every < len(data):
            byte = start + every - len(decoder.getstate()[0])
            line += data.count(b"\n", points[-1][1], byte)
            points.append((chars, byte, line))
    return points


def read_chars(fh: BinaryIO, byte: int, count: int) -> str:
    """The first `count` characters of an open UTF-8 file from byte offset `byte` (a
    checkpoint): only the blocks that hold them are read."""
    fh.seek(byte)
    decoder = _decoder()
    pieces: list[str] = []
    have = 0
    while have < count:
        block = fh.read(_READ_BLOCK)
        chars = decoder.decode(block, final=not block)
        pieces.append(chars)
        have += len(chars)
        if not block:
            break
    return "".join(pieces)[:count]


class _Digests:
    """(sha256, characters) of file versions already hashed, by (device, inode, size,
    mtime): a changed file is hashed once, not on every request."""

    def __init__(self, size: int = 1024) -> None:
        self._seen: OrderedDict[tuple[int, ...], tuple[str, int]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def of(self, fh: BinaryIO, st: os.stat_result) -> tuple[str, int]:
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return self._seen[key]
        found = _hash_and_count(fh)
        with self._lock:
            self._seen[key] = found
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)
        return found


def _hash_and_count(fh: BinaryIO) -> tuple[str, int]:
    """sha256 and UTF-8 character count of an open file, streamed in blocks."""
    fh.seek(0)
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    chars = 0
    while block := fh.read(_HASH_BLOCK):
        digest.update(block)
        chars += len(decoder.decode(block))
    chars += len(decoder.decode(b"", final=True))
    return digest.hexdigest(), chars


_DIGESTS = _Digests()


def current_digest(fh: BinaryIO, size: int, mtime_ns: int, sha256: str) -> tuple[str, int | None]:
    """(sha256, characters or None) of an open file that was indexed with this size,
    mtime and sha256. The one definition of "changed since indexing": an unchanged size
    and mtime means unchanged (nothing is read); otherwise the content is hashed, once
    per change of the file. Characters are None when nothing was read."""
    st = os.fstat(fh.fileno())
    if (st.st_size, st.st_mtime_ns) == (size, mtime_ns):
        return sha256, None
    return _DIGESTS.of(fh, st)
