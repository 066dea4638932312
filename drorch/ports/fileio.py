"""Reading a range of an open file into caller memory, whole: the local store and the archiver.

``preadv`` into a view of reused memory: no fresh ``bytes`` per read (zeroed or
page-faulted holding the GIL), and no shared file position, so several threads
read one file at once.
"""

from __future__ import annotations

import os


def read_into(fd: int, into: memoryview, offset: int) -> int:
    """Fill ``into`` from ``fd`` at ``offset``; the count read, less only where the file ends."""
    filled = 0
    while filled < len(into):
        n = os.preadv(fd, [into[filled:]], offset + filled)
        if not n:
            break
        filled += n
    return filled
