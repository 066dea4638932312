"""Chunking one large file on every core, with exactly the cuts one thread would make.

One reader thread chunking a file caps a backup at the speed of one core's reads
and FastCDC, however many cores hash and compress. Here a large file is split
into ``SEGMENT``-sized segments and each is chunked by its own thread, from its
first byte to a little past its end (``OVERLAP``).

Why the result equals sequential chunking: FastCDC's next cut depends only on
where the chunk starts and the bytes after it. A segment's chain of cuts starts
at an arbitrary offset, but once it reaches an offset where the chain before it
also starts a chunk (on real data within about 1.3 MiB, at most ~6.5 MiB in a
sample of 400 starts), both chains are the same from there on. The stitched
chain takes the earlier chain up to that offset and the later one after it. When
the two do not meet within the overlap, the segment is chunked again from the
last cut known to be right, on the stitching thread: slower, never different.
Old snapshots keep deduplicating against new ones because the cuts are the same.

Cut tasks only compute offsets (their regions are pooled and reused at once); the
bytes of each chunk are read again, with ``pread``, by the worker that stores it,
from the page cache. So no segment is held in memory while it waits to be stitched.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, wait
from dataclasses import dataclass

from drorch.archiver.chunker import MAX_CHUNK, decided_chunks, region_at

# 64 MiB: each segment cuts ~12 MiB past its end (overlap, lookahead), about 30% more FastCDC
# work than one thread's (1.3% of a backup's CPU); 32 MiB cost 55%, 128 MiB 10%.
SEGMENT = 8 * MAX_CHUNK
# How far past its end a segment's cuts are followed, to meet the next segment's chain.
OVERLAP = MAX_CHUNK // 2
PARALLEL_FROM = 2 * SEGMENT  # smaller files are chunked by one thread as they are read


@dataclass(frozen=True)
class Cuts:
    """Contiguous chunks ``(offset, length)`` from ``start``; ``eof``: the last one ends the file."""

    start: int
    chunks: list[tuple[int, int]]
    eof: bool

    @property
    def end(self) -> int:
        return self.chunks[-1][0] + self.chunks[-1][1] if self.chunks else self.start


def cut_range(fd: int, start: int, stop: int | None) -> Cuts:
    """The chunks of the file from ``start`` (taken as a chunk's first byte) until one starts
    at or past ``stop`` (None: to the end of the file)."""
    chunks: list[tuple[int, int]] = []
    pos = start
    while True:
        lengths, eof, region_end = _cut_region(fd, pos)
        for length in lengths:
            chunks.append((pos, length))
            pos += length
            if stop is not None and pos >= stop:
                return Cuts(start, chunks, eof and pos == region_end)
        if eof:
            return Cuts(start, chunks, True)


def _cut_region(fd: int, offset: int) -> tuple[list[int], bool, int]:
    """The lengths of the decided chunks of the region at ``offset``, whether it ends the file,
    and where it ends. The region is idle again on return: a cut task holds one at a time."""
    region, eof = region_at(fd, offset)
    return [len(chunk) for chunk in decided_chunks(region, eof)], eof, offset + len(region)


def parallel_cuts(fd: int, size: int, run: Callable[[Callable[[], Cuts]], Future[Cuts]],
                  ahead: int) -> Iterator[tuple[int, int]]:
    """The chunks ``(offset, length)`` of a file of about ``size`` bytes, in order.

    ``run`` starts a cut task on another thread; at most ``ahead`` segments are cut
    ahead of the stitching. The last segment runs to the end of the file, so a file
    that grew since ``size`` was taken is read to its end; one that shrank ends
    where the first segment saw it end.
    """
    ahead = max(1, ahead)
    starts = list(range(0, max(size, 1), SEGMENT))
    stops: list[int | None] = [s + OVERLAP for s in starts[1:]] + [None]
    queued: deque[Future[Cuts]] = deque()

    def launch(index: int) -> None:
        if index < len(starts):
            queued.append(run(lambda: cut_range(fd, starts[index], stops[index])))

    for index in range(ahead):
        launch(index)
    try:
        current = queued.popleft().result()
        for index in range(1, len(starts)):
            launch(index + ahead - 1)  # keeps ``ahead`` segments queued from this one on
            following = queued.popleft().result()
            if current.eof:
                break  # the file ended before this segment (it shrank): the rest is nothing
            met = yield from _until_met(current, following)
            # Chains that did not meet: this segment is cut again from the last right cut.
            current = met or cut_range(fd, current.end, stops[index])
        yield from current.chunks
    finally:  # no task may go on reading the descriptor once the caller closes it
        for future in queued:
            future.cancel()
        wait(queued)


def _until_met(current: Cuts, following: Cuts) -> Generator[tuple[int, int], None, Cuts | None]:
    """Yield ``current``'s chunks up to where ``following``'s chain meets it; then return
    ``following`` from that offset on. None (after yielding all of ``current``): no meeting."""
    starts = {offset: i for i, (offset, _length) in enumerate(following.chunks)}
    for offset, length in current.chunks:
        at = starts.get(offset)
        if at is not None:
            return Cuts(offset, following.chunks[at:], following.eof)
        yield offset, length
    return None
