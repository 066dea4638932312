"""How many bytes a source will take in a repository, from a bounded sample of it.

``scan_tree`` is a stat-only walk (names and sizes, nothing read): it is the
pre-scan that gives ``apply`` its total and this module its population.
``estimate_source`` then reads at most ``budget`` bytes, spread over the whole
source, and stores them the way ``apply`` would, without writing anything:
FastCDC chunks, SHA-256 for dedup, zstd where it pays (the repository's own
``encode_blob``, as the uploader uses it), plus what every blob, file and
directory costs in pack headers, index and trees.

- Whole-file duplicates are found without reading whole files: files of the
  same size (at least ``DUP_MIN_SIZE``) are compared by a hash of their head
  and tail; a match counts once. Small duplicates are counted as unique
  (a slight over-estimate, never an under-estimate).
- A source no larger than ``budget`` is read completely: the estimate is
  then what ``apply`` stores, up to metadata.
- Otherwise the sample is systematic and weighted by bytes: ``budget /
  WINDOW`` positions evenly spaced over the concatenated unique files; at each
  position the file there is read whole (small files) or a ``WINDOW`` around
  the position (large ones), and the stored/read ratios are averaged. A large
  file thus gets as many windows as its share of the bytes, a 1 KiB file one
  at most.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import secrets
import stat
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from drorch.archiver.archiver import is_excluded
from drorch.archiver.chunker import MIN_CHUNK, chunks
from drorch.archiver.reading import open_source
from drorch.repository.crypto import OVERHEAD
from drorch.repository.repository import compress, encode_blob
from drorch.repository.tree import encode_tree, node_from_stat

DEFAULT_BUDGET = 64 * 2**20
WINDOW = 256 * 1024
DUP_MIN_SIZE = 16 * 1024
DUP_PROBE = 4096
AVERAGE_CHUNK = 1024 * 1024  # FastCDC's average above MIN_CHUNK (see archiver.chunker)
# Per blob: IV and MAC of its sealing (32), its pack header entry (41), its entry in a
# compressed index file (~50: the hex ID barely compresses).
BLOB_OVERHEAD = 123
FIXED_OVERHEAD = 4096  # config, key file, snapshot file, a few index files


@dataclass
class TreeScan:
    """What a stat-only walk saw: regular files (path, size), directories, total bytes."""

    root: Path
    files: list[tuple[str, int]] = field(default_factory=list)
    dirs: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class SourceEstimate:
    """A source's size and what one full copy of it will take in a repository."""

    files: int
    dirs: int
    source_bytes: int
    duplicate_bytes: int  # bytes of whole-file duplicates, stored once
    sampled_bytes: int  # bytes actually read for the estimate
    exact: bool  # the whole source was read
    data_bytes: int  # file contents after dedup and compression, sealed
    metadata_bytes: int  # trees, pack headers, index, config
    seconds: float

    @property
    def stored_bytes(self) -> int:
        return self.data_bytes + self.metadata_bytes

    @property
    def ratio(self) -> float:
        """Stored bytes per source byte (below 1: dedup and compression pay)."""
        return self.stored_bytes / self.source_bytes if self.source_bytes else 1.0


def scan_tree(root: Path, excludes: list[str] | tuple[str, ...] = ()) -> TreeScan:
    """Every regular file under ``root`` with its size, skipping what the archiver excludes.

    Unreadable directories are skipped silently: the apply reports them, a
    forecast or a progress total can do without them.
    """
    scan = TreeScan(root)
    if root.is_file() or root.is_block_device():
        scan.files.append((str(root), _size(root)))
        scan.bytes = scan.files[0][1]
        return scan
    pending = [(root, "")]
    while pending:
        path, rel = pending.pop()
        scan.dirs += 1
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            entry_rel = f"{rel}/{entry.name}" if rel else entry.name
            if is_excluded(list(excludes), entry.name, entry_rel):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                pending.append((Path(entry.path), entry_rel))
            elif stat.S_ISREG(st.st_mode):
                scan.files.append((entry.path, st.st_size))
                scan.bytes += st.st_size
    scan.files.sort()
    return scan


def _size(path: Path) -> int:
    with open(path, "rb") as stream:
        return stream.seek(0, io.SEEK_END)


def estimate_source(root: Path, excludes: list[str] | tuple[str, ...] = (), *,
                    budget: int = DEFAULT_BUDGET) -> SourceEstimate:
    """Estimate one full copy of ``root`` in a repository, reading at most about ``budget`` bytes."""
    started = time.monotonic()
    scan = scan_tree(root, excludes)
    unique, duplicate_bytes = _without_duplicates(scan.files)
    unique_bytes = sum(size for _, size in unique)
    if unique_bytes <= budget:
        data, sampled = _store_all(unique), unique_bytes
    else:
        ratio, sampled = _sampled_ratio(unique, unique_bytes, max(1, budget // WINDOW))
        data = round(unique_bytes * ratio)
    blobs = sum(max(1, math.ceil(size / AVERAGE_CHUNK)) if size >= MIN_CHUNK else 1
                for _, size in unique if size)
    metadata = blobs * BLOB_OVERHEAD + _tree_bytes(scan) + FIXED_OVERHEAD
    return SourceEstimate(len(scan.files), scan.dirs, scan.bytes, duplicate_bytes, sampled,
                          unique_bytes <= budget, data, metadata, time.monotonic() - started)


# -- duplicates ------------------------------------------------------------------------------


def _without_duplicates(files: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], int]:
    """The files minus whole-file duplicates (same size, same head and tail), and their bytes."""
    by_size: dict[int, list[str]] = defaultdict(list)
    for path, size in files:
        by_size[size].append(path)
    seen: set[tuple[int, bytes]] = set()
    unique: list[tuple[str, int]] = []
    duplicate_bytes = 0
    for path, size in files:
        if size < DUP_MIN_SIZE or len(by_size[size]) == 1:
            unique.append((path, size))
            continue
        fingerprint = (size, _probe(path, size))
        if fingerprint in seen:
            duplicate_bytes += size
        else:
            seen.add(fingerprint)
            unique.append((path, size))
    return unique, duplicate_bytes


def _probe(path: str, size: int) -> bytes:
    try:
        with open_source(path) as stream:
            head = stream.read(DUP_PROBE)
            stream.seek(max(0, size - DUP_PROBE))
            return hashlib.sha256(head + stream.read(DUP_PROBE)).digest()
    except OSError:
        return secrets.token_bytes(8)  # unreadable: never taken for a duplicate


# -- contents --------------------------------------------------------------------------------


def _stored(data: bytes | memoryview) -> int:
    """What one blob of ``data`` takes in a pack, before its per-blob overhead."""
    payload, _uncompressed_length, _incompressible = encode_blob(data)
    return len(payload) + OVERHEAD


def _store_all(files: list[tuple[str, int]]) -> int:
    """Every file chunked, deduplicated by chunk hash and compressed: the exact data bytes."""
    seen: set[bytes] = set()
    total = 0
    for path, size in files:
        try:
            with open_source(path) as stream:
                for chunk in chunks(stream, size):
                    digest = hashlib.sha256(chunk).digest()
                    if digest not in seen:
                        seen.add(digest)
                        total += _stored(chunk)
        except OSError:
            continue
    return total


def _sampled_ratio(files: list[tuple[str, int]], total: int, slots: int) -> tuple[float, int]:
    """Mean stored/read ratio over ``slots`` byte positions evenly spread; and bytes read."""
    stride = total / slots
    ratios: list[float] = []
    read = 0
    cached: dict[str, float] = {}
    start = 0
    index = 0
    for slot in range(slots):
        position = (slot + 0.5) * stride
        while start + files[index][1] <= position:
            start += files[index][1]
            index += 1
        path, size = files[index]
        if size <= 2 * WINDOW:
            if path not in cached:
                cached[path] = _ratio(path, 0, size)
                read += size
            ratios.append(cached[path])
        else:
            offset = min(max(0, int(position - start) - WINDOW // 2), size - WINDOW)
            ratios.append(_ratio(path, offset, WINDOW))
            read += WINDOW
    return sum(ratios) / len(ratios), read


def _ratio(path: str, offset: int, length: int) -> float:
    try:
        with open_source(path) as stream:
            stream.seek(offset)
            data = stream.read(length)
    except OSError:
        return 1.0
    return _stored(data) / len(data) if data else 1.0


# -- metadata --------------------------------------------------------------------------------


def _tree_bytes(scan: TreeScan, sample: int = 200) -> int:
    """Compressed tree bytes: real nodes of up to ``sample`` files (with random blob IDs, as
    incompressible as real ones), encoded and compressed, scaled to every file and directory."""
    nodes = []
    for path, size in scan.files[:: max(1, len(scan.files) // sample)][:sample]:
        try:
            node = node_from_stat(os.path.basename(path), os.lstat(path), "file")
        except OSError:
            continue
        blobs = max(1, math.ceil(size / AVERAGE_CHUNK)) if size else 0
        nodes.append(node | {"content": [secrets.token_hex(32) for _ in range(blobs)]})
    if not nodes:
        return scan.dirs * 200
    per_file = (len(compress(encode_tree(nodes))) + OVERHEAD) / len(nodes)
    # Each directory: its own node in the parent's tree, and a tree blob with its overhead.
    return round(per_file * (len(scan.files) + scan.dirs) + scan.dirs * (BLOB_OVERHEAD + 64))
