"""The file:// store writes packs with O_DIRECT: stored exactly, and not kept in the page cache.

Packs are fsynced anyway, so writing them through the page cache only cost a copy of
every byte into newly allocated pages. Whether the pages are resident is asked of the
kernel (``fincore``, util-linux); the bytes are read back through the store.
"""

from __future__ import annotations

import mmap
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from drorch.providers.local import DIRECT_FROM, LocalStore

PACK_BYTES = 4 * DIRECT_FROM + 1234  # not a whole number of blocks: the tail goes through the cache


def _resident_bytes(path: Path) -> int:
    done = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                          capture_output=True, text=True, check=True)
    return int(done.stdout.split()[0])


def _pack_buffer(data: bytes) -> memoryview:
    """A pack as the uploader hands it over: a view of a page-aligned anonymous mapping."""
    mapping = mmap.mmap(-1, len(data) + 8192, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    mapping[: len(data)] = data
    return memoryview(mapping)[: len(data)]


@pytest.mark.skipif(shutil.which("fincore") is None, reason="fincore (util-linux) is not installed")
def test_a_pack_is_stored_exactly_and_leaves_only_its_tail_in_the_page_cache(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "repo")
    data = os.urandom(PACK_BYTES)
    store.put("data/ab/pack", _pack_buffer(data))
    path = tmp_path / "repo" / "data" / "ab" / "pack"
    assert _resident_bytes(path) <= 2 * 4096, "the pack was written through the page cache"
    assert store.get("data/ab/pack") == data


@pytest.mark.parametrize("where", ["unaligned-buffer", "tmpfs"])
def test_where_direct_io_is_refused_the_object_is_still_stored_exactly(tmp_path: Path, where: str) -> None:
    """A buffer not aligned in memory (bytes), or a file system that may refuse O_DIRECT:
    the rest of the object goes through the page cache, whole and fsynced as before."""
    root = tmp_path / "repo"
    if where == "tmpfs":
        if not Path("/dev/shm").is_dir():
            pytest.skip("no /dev/shm here")
        root = Path("/dev/shm") / f"drorch-test-{os.getpid()}-{tmp_path.name}"
    try:
        store = LocalStore(root)
        data = os.urandom(PACK_BYTES)
        store.put("data/cd/pack", memoryview(data)[1:] if where == "unaligned-buffer" else data)
        assert store.get("data/cd/pack") == (data[1:] if where == "unaligned-buffer" else data)
    finally:
        shutil.rmtree(root, ignore_errors=True)
