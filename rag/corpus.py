"""Reading the corpus: which files are documents, their ids, their text: a plain-text file
exactly as on disk, any other format as its reader (rag.readers) gives it.

Only files whose resolved real path lies inside the resolved corpus folder are read, at
index time and at every later read: a symlink (or a swapped-in link) pointing elsewhere
is refused. The check is made on the file already opened, so a swap between the check and
the read cannot win.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rag.errors import CorpusNotFound, DocumentNotFound, SourceUnavailable
from rag.extraction_cache import ExtractionCache
from rag.file_text import char_checkpoints, decode_document_bytes
from rag.readers import READERS, Unreadable, extract
from rag.structure import Layout

LOG = logging.getLogger(__name__)

PLAIN_SUFFIXES = (".txt",)
DOCUMENT_SUFFIXES = PLAIN_SUFFIXES + tuple(READERS)  # every extension rag can read
# A NUL byte in the first block is the usual sign of a binary file (as git and grep decide).
_BINARY_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class Document:
    """One corpus file's content, in memory while a build reads it. What the index keeps of
    it is a `rag.manifest.DocumentRecord` (which extends the `DocumentInfo` the API shows);
    the two are kept apart on purpose: the text is never written into the manifest.
    `text` is a plain-text file's bytes decoded as UTF-8, newlines untouched, or what the
    format's reader extracted (`format` names the reader; `layout` and `page_starts` are
    its structure, then); `checkpoints` maps character offsets of `text` to byte offsets
    (of the file, or of the extracted text as UTF-8) and lines (`char_checkpoints`);
    `sha256` and `size` are always the file's."""

    doc_id: str
    path: Path
    text: str
    sha256: str
    size: int
    mtime_ns: int
    checkpoints: list[tuple[int, int, int]]
    format: str = "text"
    layout: Layout | None = None
    page_starts: tuple[int, ...] = ()

    @property
    def extracted(self) -> bool:
        """Whether `text` comes from a reader (and so is stored with the index)."""
        return self.format != "text"


@dataclass(frozen=True)
class Skipped:
    """A listed file that gives no document, and why (the index summary counts reasons)."""

    doc_id: str
    reason: str
    sha256: str = ""  # the file's, when it could be read
    detail: str = ""  # what the warning said, when more than the reason

    @property
    def why(self) -> str:
        return self.detail or self.reason


@dataclass(frozen=True)
class FileStamp:
    """What tells, without reading a file, whether it may have changed since indexing."""

    doc_id: str
    path: Path
    size: int
    mtime_ns: int


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def _printable(path: str) -> str:
    """A path for a one-line message, undecodable bytes shown as escapes."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def _shown(root: Path | str, path: str | Path) -> str:
    """A path inside the corpus as a message names it: relative to the corpus folder, as
    document ids are (a message may reach an HTTP client, which is not told where the
    corpus lies)."""
    try:
        return _printable(Path(path).relative_to(root).as_posix())
    except ValueError:
        return _printable(Path(path).name)


OUTSIDE_LINK = "link outside the corpus"  # a reason files are left out, as summaries count it

# (corpus folder, message) already logged: every question checks the folder for changes,
# and a file that stays skipped is reported once per process, not at every question.
_WARNED: set[tuple[str, str]] = set()


def _warn_once(root: Path | str, message: str) -> None:
    key = (str(root), message)
    if key not in _WARNED:
        _WARNED.add(key)
        LOG.warning("%s", message)


class _LeftOut:
    """What listing the corpus leaves out: each said once (`_warn_once`), and counted by
    reason into `counts` (the index summary's "skipped" line) when given."""

    def __init__(self, root: Path, counts: dict[str, int] | None) -> None:
        self.root, self.counts = root, counts

    def __call__(self, path: str, reason: str, detail: str = "") -> None:
        _warn_once(self.root, f"skipped {_shown(self.root, path)}: {detail or reason}")
        if self.counts is not None:
            self.counts[reason] = self.counts.get(reason, 0) + 1


def _walk(root: Path, leave_out: _LeftOut) -> Iterator[tuple[str, list[os.DirEntry]]]:
    """(folder, its entries) for every folder under `root`, iteratively (a deep tree does
    not exhaust the stack), in sorted order. Hidden entries are skipped; a folder that
    cannot be listed, a symlinked folder leading outside the corpus or into a folder seen
    already (a loop) is left out."""
    root_real = os.path.realpath(root)
    seen = {root_real}
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = [e for e in listing if not e.name.startswith(".")]
            entries.sort(key=lambda e: e.name)
        except OSError as exc:
            leave_out(folder, "unlistable folder", f"cannot list it ({exc.strerror or exc})")
            continue
        yield folder, entries
        below = []
        for entry in entries:
            try:
                if not entry.is_dir():  # follows links, as a reader expects
                    continue
            except OSError:
                continue
            real = os.path.realpath(entry.path)
            if not _inside(real, root_real):
                leave_out(entry.path, OUTSIDE_LINK, "links outside the corpus folder")
            elif real in seen:
                leave_out(entry.path, "symlink loop")
            else:
                seen.add(real)
                below.append(entry.path)
        stack.extend(reversed(below))


def list_document_files(
    corpus_dir: Path,
    suffixes: tuple[str, ...] = DOCUMENT_SUFFIXES,
    unsupported: dict[str, int] | None = None,
    left_out: dict[str, int] | None = None,
) -> list[FileStamp]:
    """Every file with one of `suffixes` under `corpus_dir` that lies inside it, sorted by
    doc_id; the other files are counted by extension in `unsupported` when given.

    Hidden files and folders are skipped, and so (with a one-line warning each, counted by
    reason in `left_out` when given) are files whose name is not valid UTF-8 (no id could
    name them in JSON or a URL), files or folders that link outside the corpus, and symlink
    loops.
    """
    root = Path(corpus_dir)
    if root.exists() and not root.is_dir():
        raise CorpusNotFound(
            f"the corpus is a folder, and {root} is a file: pass the folder that holds it"
        )
    if not root.is_dir():
        raise CorpusNotFound(
            f"corpus folder not found: {root} (set RAG_CORPUS_DIR or pass --corpus)"
        )
    root_real = os.path.realpath(root)
    leave_out = _LeftOut(root, left_out)
    stamps: list[FileStamp] = []
    for _, entries in _walk(root, leave_out):
        for entry in entries:
            if not entry.name.lower().endswith(suffixes):
                if unsupported is not None and entry.is_file(follow_symlinks=False):
                    extension = Path(entry.name).suffix.lower() or "(none)"
                    unsupported[extension] = unsupported.get(extension, 0) + 1
                continue
            try:
                entry.name.encode("utf-8")
            except UnicodeEncodeError:
                leave_out(
                    entry.path,
                    "file name not UTF-8",
                    "the file name is not valid UTF-8 (rename the file)",
                )
                continue
            if not _inside(os.path.realpath(entry.path), root_real):
                leave_out(entry.path, OUTSIDE_LINK, "links outside the corpus folder")
                continue
            try:
                st = os.stat(entry.path)
            except OSError as exc:
                leave_out(entry.path, "unreadable", str(exc.strerror or exc))
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            path = Path(entry.path)
            doc_id = path.relative_to(root).as_posix()
            stamps.append(FileStamp(doc_id, path, st.st_size, st.st_mtime_ns))
    stamps.sort(key=lambda s: s.doc_id)
    return stamps


def open_inside(corpus_dir: Path, path: Path) -> BinaryIO:
    """Open `path` for reading only if, once opened, it is a regular file inside the
    corpus folder. Raises DocumentNotFound otherwise, and for a file that is gone."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    name = _shown(corpus_dir, path)
    try:  # O_NONBLOCK: opening a FIFO planted in the corpus must not hang
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise DocumentNotFound(f"{name} is gone from the corpus; run `rag index`") from None
    except OSError as exc:
        raise SourceUnavailable(f"cannot open {name} ({exc.strerror or exc})") from None
    try:
        opened = os.fstat(fd)
        real = _real_path_of(fd, path, opened)
        if not stat.S_ISREG(opened.st_mode) or real is None:
            raise DocumentNotFound(f"{name} is not a regular file; run `rag index`")
        if not _inside(real, os.path.realpath(corpus_dir)):
            raise DocumentNotFound(f"{name} links outside the corpus folder: it is not served")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _real_path_of(fd: int, path: Path, opened: os.stat_result) -> str | None:
    """The real path of an open file: from /proc where there is one (exact), else the
    path resolved now, accepted only if it is the very file that was opened."""
    proc = f"/proc/self/fd/{fd}"
    if os.path.exists(proc):
        return os.readlink(proc)
    real = os.path.realpath(path)
    try:
        now = os.stat(real)
    except OSError:
        return None
    return real if (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino) else None


def read_document(
    stamp: FileStamp, corpus_dir: Path, extracted: ExtractionCache | None = None
) -> Document | Skipped:
    """Read one file: a Document, or Skipped with the reason (also logged in one line).
    A file of a reader's format is looked up in `extracted` by its sha256 first, and
    what its reader gives is kept there. A PDF is hashed and read from the open file, a
    page at a time: it never sits in memory whole."""

    def skip(reason: str, detail: str = "", sha256: str = "") -> Skipped:
        LOG.warning("skipped %s: %s", stamp.doc_id, detail or reason)
        return Skipped(stamp.doc_id, reason, sha256, detail)

    kind = READERS.get(stamp.path.suffix.lower())
    try:
        with open_inside(corpus_dir, stamp.path) as fh:
            if kind == "pdf":
                size = os.fstat(fh.fileno()).st_size
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
                data = b""
                if size == 0:
                    return skip("empty file")
            else:
                data = fh.read()
                size, digest = len(data), sha256_bytes(data)
                if not data.strip():
                    return skip("empty file")
                if kind in (None, "markdown") and data.startswith(_UTF16_BOMS):
                    return skip("UTF-16 file", "UTF-16 text (re-save it as UTF-8)")
                if kind == "markdown":
                    _warn_unless_utf8(stamp.doc_id, data)
            if kind is not None:
                got = extracted.get(kind, digest) if extracted is not None else None
                if got is None:
                    fh.seek(0)
                    try:
                        got = extract(stamp.path, fh if kind == "pdf" else data)
                    except Unreadable as exc:
                        got = exc
                    if extracted is not None:
                        extracted.put(kind, digest, got)
    except (DocumentNotFound, SourceUnavailable) as exc:
        return skip("unreadable", str(exc))
    except OSError as exc:
        return skip("unreadable", f"cannot read ({exc.strerror or exc})")
    if kind is not None:
        if isinstance(got, Unreadable):
            return skip(got.reason, str(got), digest)
        return Document(
            doc_id=stamp.doc_id,
            path=stamp.path,
            text=got.text,
            sha256=digest,
            size=size,
            mtime_ns=stamp.mtime_ns,
            checkpoints=char_checkpoints(got.text.encode("utf-8")),
            format=kind,
            layout=got.layout,
            page_starts=got.page_starts,
        )
    if b"\x00" in data[:_BINARY_SNIFF_BYTES]:
        return skip("binary file", "binary file (contains NUL bytes)")
    text = decode_document_bytes(data)
    if "\ufffd" in text:  # decoded already: check the bytes only when something was replaced
        _warn_unless_utf8(stamp.doc_id, data)
    return Document(
        doc_id=stamp.doc_id,
        path=stamp.path,
        text=text,
        sha256=digest,
        size=size,
        mtime_ns=stamp.mtime_ns,
        checkpoints=char_checkpoints(data),
    )


# A text file saved as "Unicode" by Windows tools: every other byte is NUL, which reads as
# binary; it is said what it is instead.
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _warn_unless_utf8(doc_id: str, data: bytes) -> None:
    """Plain text and Markdown are read as UTF-8 (offsets into them are exact only so);
    bytes that are not are replaced by U+FFFD, and the user is told how to fix the file."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        LOG.warning(
            "%s is not valid UTF-8: undecodable bytes replaced by U+FFFD (re-save it as UTF-8)",
            doc_id,
        )


def load_corpus(corpus_dir: Path) -> list[Document]:
    """All usable documents under `corpus_dir`, in doc_id order."""
    stamps = list_document_files(corpus_dir)
    docs = (read_document(s, corpus_dir) for s in stamps)
    return [doc for doc in docs if isinstance(doc, Document)]


def resolve_doc_path(corpus_dir: Path, doc_id: str) -> Path:
    """The path of `doc_id`, refusing ids that would leave the corpus folder.

    The check is on the id itself (no absolute path, no `..`, no hidden part, a document
    suffix); `open_inside` then checks where the opened file really is.
    """
    parts = doc_id.split("/")
    unsafe = (
        not doc_id
        or "\x00" in doc_id
        or "\\" in doc_id
        or doc_id.startswith("/")
        or any(part in ("", ".", "..") or part.startswith(".") for part in parts)
        or not doc_id.lower().endswith(DOCUMENT_SUFFIXES)
    )
    if unsafe:
        raise DocumentNotFound(f"no document {doc_id!r} in the corpus (see `rag docs`)")
    path = Path(corpus_dir).joinpath(*parts)
    if not path.is_file():
        raise DocumentNotFound(
            f"no file for {doc_id!r} in the corpus (removed since indexing?); run `rag index`"
        )
    return path


def open_document(corpus_dir: Path, doc_id: str) -> BinaryIO:
    """The file of `doc_id`, opened, checked to lie inside the corpus folder."""
    return open_inside(corpus_dir, resolve_doc_path(corpus_dir, doc_id))


def read_document_text(corpus_dir: Path, doc_id: str) -> tuple[str, str]:
    """(text, sha256) of a whole document as it is on disk now."""
    with open_document(corpus_dir, doc_id) as fh:
        data = fh.read()
    return decode_document_bytes(data), sha256_bytes(data)
