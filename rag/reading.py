"""Reading the corpus in worker processes: PDF, web, Word and Markdown extraction is
CPU-bound Python and C, so it runs in other processes while this one chunks and embeds
what is already read (the GIL would serialise threads). Documents come back in doc_id
order, as `rag.corpus.read_document` gives them."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from rag.corpus import Document, FileStamp, Skipped, read_document
from rag.extraction_cache import ExtractionCache
from rag.readers import READERS

LOG = logging.getLogger(__name__)


def default_workers() -> int:
    """One reader process per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _read_in_worker(
    stamp: FileStamp, corpus_dir: Path, index_dir: Path | None
) -> Document | Skipped:
    cache = ExtractionCache(index_dir) if index_dir is not None else None
    return read_document(stamp, corpus_dir, cache)


def read_documents(
    stamps: list[FileStamp],
    corpus_dir: Path,
    index_dir: Path | None = None,
    workers: int | None = None,
) -> Iterator[Document | Skipped]:
    """Every file of `stamps` read, in order. Files a reader must extract go to `workers`
    processes (default: one per core) when there are two or more of them; plain text is
    read here. What readers extract is kept in `index_dir`'s extraction cache. A file
    whose reader crashes its process (a fault in a PDF library) is skipped as
    "reader crashed", and the others are read on; where no worker process can run at all,
    every file is read here."""
    cache = ExtractionCache(index_dir) if index_dir is not None else None
    workers = workers or default_workers()
    extracted = [s for s in stamps if s.path.suffix.lower() in READERS]
    if workers < 2 or len(extracted) < 2:
        for stamp in stamps:
            yield read_document(stamp, corpus_dir, cache)
        return
    pending = list(stamps)
    pool_size = min(workers, len(extracted))
    while pending:
        # spawn, not fork: the parent may hold the model and torch's threads.
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(pool_size, mp_context=context)
        try:
            futures: list[Future | None] = [
                pool.submit(_read_in_worker, s, corpus_dir, index_dir)
                if s.path.suffix.lower() in READERS
                else None
                for s in pending
            ]
            while pending:
                stamp, future = pending[0], futures[0]
                doc = read_document(stamp, corpus_dir, cache) if future is None else future.result()
                pending.pop(0)
                futures.pop(0)
                yield doc
        except BrokenProcessPool:
            if not _processes_work(context):  # no worker can run here (not a file's fault)
                LOG.warning("reader processes cannot start here: reading in this process")
                for stamp in pending:
                    yield read_document(stamp, corpus_dir, cache)
                return
            LOG.warning("a reader process died: reading the rest one file at a time")
            if pool_size == 1:  # alone in its pool: this file is the one that crashed it
                LOG.warning("skipped %s: its reader crashed", pending[0].doc_id)
                yield Skipped(pending.pop(0).doc_id, "reader crashed")
            # Read the rest one process at a time, so that the file at fault is found.
            pool_size = 1
        finally:  # also when the caller stops early: no work left running
            pool.shutdown(wait=True, cancel_futures=True)


def _processes_work(context: multiprocessing.context.BaseContext) -> bool:
    """Whether a worker process starts and answers at all (it does not where the calling
    script, run without an `if __name__ == "__main__":` guard, starts over in the child)."""
    try:
        with ProcessPoolExecutor(1, mp_context=context) as probe:
            return probe.submit(os.getpid).result(timeout=120) > 0
    except Exception:  # noqa: BLE001 - any failure means: read in this process
        return False
