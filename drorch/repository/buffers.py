"""Reusable anonymous memory for multi-megabyte buffers (pack buffers, file read regions).

Fresh memory is expensive here: ``bytearray(n)`` zeroes all of it holding the GIL,
and a fresh ``mmap`` page-faults every 4 KiB on first write (costly in a VM), which
together cost more than AES and Poly1305 on the same bytes. A pool hands out views
of a few long-lived mappings instead.

A mapping is handed out again only when *no* view of it is alive any more: its
exports are checked with a same-size ``resize``, which the mmap module refuses with
BufferError while any memoryview (or slice of one) exists. So data a worker may
still be reading is never overwritten, whatever path the views took.
"""

from __future__ import annotations

import mmap
import threading


class BufferPool:
    """Up to ``keep`` mappings of ``size`` bytes, reused once nobody holds a view of them."""

    def __init__(self, size: int, keep: int) -> None:
        self.size = size
        self.keep = keep
        self._maps: list[mmap.mmap] = []
        self._lock = threading.Lock()

    def get(self) -> memoryview:
        """A writable view of ``size`` bytes, of an idle pooled mapping or a new one."""
        with self._lock:
            for mapping in self._maps:
                if _idle(mapping):
                    return memoryview(mapping)  # exported before the lock is released
            mapping = anonymous(self.size)
            if len(self._maps) < self.keep:
                self._maps.append(mapping)
            return memoryview(mapping)

    def trim(self) -> None:
        """Give the pages of idle mappings back to the kernel (after a backup: a long-running
        scheduler should not keep ~200 MiB resident between runs). They fault in again on use."""
        with self._lock:
            for mapping in self._maps:
                if _idle(mapping):
                    mapping.madvise(mmap.MADV_DONTNEED)


def anonymous(size: int) -> mmap.mmap:
    """Private anonymous memory (Python's default is shared, whose pages MADV_DONTNEED keeps)."""
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)


def _idle(mapping: mmap.mmap) -> bool:
    try:
        mapping.resize(len(mapping))
    except BufferError:
        return False
    return True
