"""Opening and reading source files the way every reader of a source does.

Shared by the archiver's threads, its helper processes and the cost sampler, so
all of them leave atimes alone and treat a file that grew since it was listed
alike.
"""

from __future__ import annotations

import os
from io import FileIO


def open_source(path: str) -> FileIO:
    """Open a source file for reading without updating its atime where the OS allows."""
    return os.fdopen(open_fd(path), "rb", buffering=0)  # FastCDC reads with readinto; no second buffer


def open_fd(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_NOATIME | os.O_CLOEXEC)
    except PermissionError:  # O_NOATIME needs ownership (or CAP_FOWNER)
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def read_small_file(path: str, expected: int) -> bytes | None:
    """The whole content of a file listed with ``expected`` bytes, in one read call; None when it
    has grown past that since (the caller then reads it as any other file)."""
    fd = open_fd(path)
    try:
        data = os.read(fd, expected + 1)  # one call: no file object, no generator
    finally:
        os.close(fd)
    return None if len(data) > expected else data
