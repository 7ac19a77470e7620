"""Cited spans read back from the corpus: what `rag show` and `/documents/{id}/text` serve.

A span is read from the nearest character checkpoint recorded at index time, so serving
ten characters of a 600 MB file reads a block or two, not the file. Whether the file
changed since indexing is decided from its size and mtime against the manifest; only when
those differ is it hashed, once per change (the result is remembered). A document of
another format (PDF, HTML, Word, Markdown) is cited in the text its reader extracted,
which the index stores: spans are read from that copy, staleness from the file.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rag.corpus import open_document
from rag.errors import InvalidSpan, SourceUnavailable
from rag.file_text import current_digest, read_chars
from rag.manifest import DocumentRecord

# The longest span (context included) served in one piece: a reader asks for a range.
MAX_SPAN_CHARS = 1_000_000


@dataclass(frozen=True)
class CitedSpan:
    """`text` = characters start..end of the document, with context around it."""

    doc_id: str
    start: int
    end: int
    text: str
    before: str
    after: str
    doc_sha256: str  # of the file now
    indexed_sha256: str
    stale: bool  # the file changed since indexing: the offsets may not match any more
    chars: int  # length of the document now, in characters
    line_start: int  # 1-based line of `start`
    line_end: int  # 1-based line of the span's last character


def read_cited_span(
    corpus_dir: Path,
    record: DocumentRecord,
    start: int | None = None,
    end: int | None = None,
    context: int = 0,
    limit: int | None = MAX_SPAN_CHARS,
    build: Path | None = None,
) -> CitedSpan:
    """Characters `start:end` (default: the whole document) of an indexed document as it
    is on disk now, with up to `context` characters either side. Raises InvalidSpan for a
    range that does not fit, DocumentNotFound when the file is gone or leads outside the
    corpus, SourceUnavailable when it cannot be read. `build`: the index build holding the
    extracted texts (needed for documents that are not plain text)."""
    try:
        with open_document(corpus_dir, record.doc_id) as original:
            sha256, chars = current_digest(original, record.size, record.mtime_ns, record.sha256)
            stale = sha256 != record.sha256
            if record.text_file is None:
                where = _Source(original, record.chars if not stale else chars, not stale)
                return _read_span(where, record, start, end, context, limit, sha256, stale)
            if build is None:
                raise SourceUnavailable(f"{record.doc_id}: its extracted text needs the index")
            with open(build / record.text_file, "rb") as text:
                where = _Source(text, record.chars, True)  # the text as indexed, always
                return _read_span(where, record, start, end, context, limit, sha256, stale)
    except OSError as exc:
        raise SourceUnavailable(
            f"cannot read {record.doc_id} now ({exc.strerror or exc}); retry, or run `rag index`"
        ) from None


@dataclass(frozen=True)
class _Source:
    """Where a span is read: an open file of `chars` characters, and whether the record's
    checkpoints describe it (not for a plain-text file changed since indexing)."""

    fh: BinaryIO
    chars: int
    checkpoints_hold: bool


def _read_span(
    source: _Source,
    record: DocumentRecord,
    start: int | None,
    end: int | None,
    context: int,
    limit: int | None,
    sha256: str,
    stale: bool,
) -> CitedSpan:
    chars = source.chars
    lo = 0 if start is None else start
    hi = chars if end is None else end
    if not 0 <= lo < hi <= chars:
        raise InvalidSpan(
            f"span {lo}-{hi} does not fit {record.doc_id} ({chars} characters): "
            f"give 0 <= start < end <= {chars}"
        )
    first, last = max(0, lo - context), min(chars, hi + context)
    if limit is not None and last - first > limit:
        raise InvalidSpan(
            f"span {lo}-{hi} with its context is {last - first} characters, over the "
            f"limit of {limit}: ask for a shorter range with start and end"
        )
    usable = source.checkpoints_hold and record.checkpoints
    points = record.checkpoints if usable else [(0, 0, 1)]
    char, byte, line = points[bisect.bisect_right(points, (first, math.inf)) - 1]
    read = read_chars(source.fh, byte, last - char)
    lo, hi, first = lo - char, hi - char, first - char  # offsets into `read`
    line_start = line + read.count("\n", 0, lo)
    return CitedSpan(
        doc_id=record.doc_id,
        start=lo + char,
        end=hi + char,
        text=read[lo:hi],
        before=read[first:lo],
        after=read[hi:],
        doc_sha256=sha256,
        indexed_sha256=record.sha256,
        stale=stale,
        chars=chars,
        line_start=line_start,
        line_end=line_start + read.count("\n", lo, hi - 1),
    )
