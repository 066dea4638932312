from __future__ import annotations

import io
import random

from drorch.archiver.chunker import MAX_CHUNK, MIN_CHUNK, chunks


def _data(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def test_small_file_is_one_chunk_and_empty_file_none() -> None:
    assert list(chunks(io.BytesIO(b"abc"), 3)) == [b"abc"]
    assert list(chunks(io.BytesIO(b""), 0)) == []


def test_chunks_cover_the_stream_within_bounds() -> None:
    data = _data(12 * 1024 * 1024)
    pieces = list(chunks(io.BytesIO(data), len(data)))
    assert b"".join(pieces) == data
    assert all(MIN_CHUNK <= len(p) <= MAX_CHUNK for p in pieces[:-1])


def test_file_that_grew_after_stat_is_read_to_the_end() -> None:
    data = _data(3 * 1024 * 1024)
    assert b"".join(chunks(io.BytesIO(data), 10)) == data


def test_small_edit_changes_few_chunks() -> None:
    data = bytearray(_data(32 * 1024 * 1024))
    before = {bytes(c) for c in chunks(io.BytesIO(bytes(data)), len(data))}
    data[16 * 1024 * 1024 : 16 * 1024 * 1024 + 100] = b"x" * 100
    after = {bytes(c) for c in chunks(io.BytesIO(bytes(data)), len(data))}
    assert len(after - before) <= 2


class _Pipe(io.BytesIO):
    """Short reads and no seeking, as from a pipe."""

    def readinto(self, buffer):  # type: ignore[override]
        return super().readinto(memoryview(buffer)[: 3 * 1024 * 1024 + 1])

    def seekable(self) -> bool:
        return False


def test_cuts_match_pyfastcdc_cut_stream_across_regions() -> None:
    """Region reading must cut where the streaming chunker did, or old snapshots stop deduplicating."""
    from drorch.archiver.chunker import _CDC, REGION

    data = _data(2 * REGION + 3 * 1024 * 1024, seed=7)
    expected = [bytes(c.data) for c in _CDC.cut_stream(io.BytesIO(data))]
    assert [bytes(c) for c in chunks(io.BytesIO(data), len(data))] == expected
    assert [bytes(c) for c in chunks(_Pipe(data), 10)] == expected
