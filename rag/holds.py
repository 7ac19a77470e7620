"""Readers' holds on build folders, so that publishing never deletes a build that a
process is still loading or serving from.

A loaded index holds a shared `flock` on its build's manifest for as long as it lives;
removing an old build first takes the exclusive lock without waiting, and skips the build
when a reader holds it. Written by hand because `filelock` has no shared lock that can
outlive the thread that took it (its ReadWriteLock is per thread, and a server drops an
index from whichever thread finishes the last request on it). Where `fcntl` is missing
(Windows), builds are simply not held, and the two newest are kept as before.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None  # type: ignore[assignment]

HELD_FILE = "manifest.json"


def holds_supported() -> bool:
    return fcntl is not None


def hold_build(build: Path) -> int | None:
    """Take a shared hold on `build`; the returned descriptor releases it when closed.
    Raises FileNotFoundError when the build was removed meanwhile."""
    if fcntl is None:
        return None
    fd = os.open(build / HELD_FILE, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def unheld(build: Path) -> int | None:
    """An exclusive hold on `build` if no reader holds it (its descriptor, to close after
    the build is removed), else None. A build with no manifest (an interrupted write)
    is never held."""
    if fcntl is None:
        return None
    try:
        fd = os.open(build / HELD_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
