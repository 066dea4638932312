"""A restic-format repository (format version 2) on any ObjectStore.

Reading and writing follow restic's ordering rules (design.rst, "Read and Write
Ordering"): packs are durable before the index files that list them, and index
files before the snapshot that references their blobs. A reader lists snapshots
before loading the index.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import zstandard

from drorch.ports.errors import (
    IntegrityError,
    ObjectExists,
    ObjectNotFound,
    RepositoryError,
    RepositoryNotFound,
    WrongPassword,
)
from drorch.ports.notices import warn
from drorch.ports.store import ObjectStore
from drorch.repository import jsoncodec, keys
from drorch.repository.bootstrap import refuse_missing_config
from drorch.repository.crypto import AuthenticationFailed, Key
from drorch.repository.index import Index, index_documents
from drorch.repository.layout import CONFIG, FileType, file_id_of, object_name
from drorch.repository.pack import EAGER_TAIL, TREE, PackedBlob, PackFormatError, parse_tail

FORMAT_VERSION = 2
TREE_PACKS_CACHED = 8  # at most 8 x 16 MiB
_ENCODING_ZSTD_JSON = 2

_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    """One compressor per thread: zstandard contexts are not safe to share."""
    if not hasattr(_local, "cctx"):
        _local.cctx = zstandard.ZstdCompressor(level=3)
        _local.dctx = zstandard.ZstdDecompressor()
    return _local.cctx  # type: ignore[no-any-return]


def _decompressor() -> zstandard.ZstdDecompressor:
    _compressor()
    return _local.dctx  # type: ignore[no-any-return]


def compress(data: bytes | memoryview) -> bytes:
    return _compressor().compress(data)


_PROBE = 8 * 1024


def worth_compressing(data: bytes | memoryview) -> bool:
    """False when samples from the start, middle and end of a large blob do not shrink:
    already compressed or encrypted data is then stored as is, saving a full zstd pass."""
    if len(data) < 16 * _PROBE:
        return True
    middle = len(data) // 2
    samples = (data[:_PROBE], data[middle:middle + _PROBE], data[-_PROBE:])
    return any(len(_fast_compressor().compress(s)) < 0.95 * _PROBE for s in samples)


def encode_blob(data: bytes | memoryview) -> tuple[bytes | memoryview, int, bool]:
    """A blob's pack payload: (payload, uncompressed length or 0 when stored plain, incompressible).

    zstd output is kept only when smaller. ``incompressible`` (zstd could not shrink it
    by 10%) feeds the anomaly detector's ciphertext signal.
    """
    compressed = compress(data) if worth_compressing(data) else data
    incompressible = len(compressed) >= 0.9 * len(data)
    if len(compressed) < len(data):
        return compressed, len(data), incompressible
    return data, 0, incompressible


def _fast_compressor() -> zstandard.ZstdCompressor:
    if not hasattr(_local, "probe"):
        _local.probe = zstandard.ZstdCompressor(level=1)
    return _local.probe  # type: ignore[no-any-return]


def decompress(data: bytes | bytearray, size: int) -> bytes:
    return _decompressor().decompress(data, max_output_size=size)


def unseal_blob(key: Key, sealed: bytes | bytearray | memoryview, blob_id: str,
                uncompressed_length: int) -> bytes | bytearray:
    """A blob's plaintext: authenticated, decrypted, decompressed (when ``uncompressed_length``)
    and checked against its ID; AuthenticationFailed says which check failed."""
    try:
        plain: bytes | bytearray = key.open(sealed)
    except AuthenticationFailed:
        raise AuthenticationFailed("does not authenticate") from None
    if uncompressed_length:
        try:
            plain = decompress(plain, uncompressed_length)
        except zstandard.ZstdError:
            raise AuthenticationFailed("does not decompress") from None
    if hashlib.sha256(plain).hexdigest() != blob_id:
        raise AuthenticationFailed("does not match its hash")
    return plain


class RepositoryCreatedMeanwhile(RepositoryError):
    """``init`` lost a race: another process created the repository a moment earlier."""


@dataclass(frozen=True)
class Config:
    id: str
    version: int
    chunker_polynomial: str


class Repository:
    """An opened repository: its store, master key, config and (once loaded) index."""

    def __init__(self, store: ObjectStore, key: Key, config: Config, name: str) -> None:
        self.store = store
        self.key = key
        self.config = config
        self.name = name  # the target name, for messages
        self.index = Index()
        # Objects younger than this cannot be deleted (object lock); prune and forget keep them.
        self.immutable_days: int | None = None
        # Snapshot files found damaged while listing (id -> what is wrong); see load_snapshots.
        self.damaged_snapshots: dict[str, str] = {}
        # Snapshot documents read and checked through this object (id -> document); see load_snapshots.
        self.snapshot_documents: dict[str, dict] = {}
        self._tree_packs: dict[str, bytes] = {}  # insertion-ordered: oldest first
        self._tree_packs_lock = threading.Lock()

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def init(cls, store: ObjectStore, password: bytes, name: str, *, master: Key | None = None
             ) -> Repository:
        """Create a new repository; refuses if one already exists there.

        ``master`` reuses another repository's master key: targets of one mirror
        share it so packs and snapshots can be copied between them verbatim.
        """
        if store.exists(CONFIG):
            raise RepositoryError(f"target {name!r} already holds a repository at {store.location}")
        refuse_missing_config(store, name)
        half_done = _open_half_initialised(store, password, name)
        master = half_done or master or Key.random()
        if half_done is None:
            key_id, key_raw = keys.new_key_file(master, password)
            _pause_for_test("before-key")
            store.put(object_name(FileType.KEY, key_id), key_raw, exclusive=True)
        # restic picks an irreducible polynomial for its Rabin chunker; drorch chunks with
        # FastCDC, but restic requires the field, so store a fixed valid one.
        config = Config(os.urandom(32).hex(), FORMAT_VERSION, "3da3358b4dc173")
        doc = {"version": config.version, "id": config.id,
               "chunker_polynomial": config.chunker_polynomial}
        _pause_for_test("before-config")
        try:
            store.put(CONFIG, master.seal(json.dumps(doc).encode()), exclusive=True)
        except ObjectExists as err:
            # Another process committed first. Our key file stays when the config it wrote
            # is sealed with our master key (it completed our half-initialised store, or we
            # completed its): removing it could leave a config no key opens.
            if half_done is None and not _seals(store, master):
                store.delete(object_name(FileType.KEY, key_id))
            raise RepositoryCreatedMeanwhile(f"another process initialised target {name!r} first") from err
        _pause_for_test("after-config")
        return cls(store, master, config, name)

    @classmethod
    def open(cls, store: ObjectStore, password: bytes, name: str) -> Repository:
        """Open with the first key file that ``password`` unlocks."""
        try:
            sealed_config = store.get(CONFIG)
        except ObjectNotFound as err:
            refuse_missing_config(store, name)
            raise RepositoryNotFound(
                f"target {name!r} has no repository at {store.location}",
                hint="run `drorch apply` to create it, or check the target URL",
            ) from err
        master = _unlock(store, password, name)
        try:
            plain = _decode_unpacked(master.open(sealed_config))
        except AuthenticationFailed as err:
            raise IntegrityError(f"the config of target {name!r} is damaged") from err
        config = Config(plain["id"], plain["version"], plain.get("chunker_polynomial", ""))
        if config.version not in (1, FORMAT_VERSION):
            raise RepositoryError(
                f"target {name!r} uses repository format {config.version}; drorch reads 1 and 2"
            )
        return cls(store, master, config, name)

    # -- unpacked files (index, snapshots, locks) -------------------------------------------

    def seal_unpacked(self, doc: dict) -> tuple[str, bytes]:
        """A JSON document sealed as a repository file (zstd-compressed in format 2): (id, bytes)."""
        body = jsoncodec.dumps(doc)
        if self.config.version >= 2:
            body = bytes([_ENCODING_ZSTD_JSON]) + compress(body)
        sealed = bytes(self.key.seal(body))
        return hashlib.sha256(sealed).hexdigest(), sealed

    def save_unpacked(self, kind: FileType, doc: dict, *, exclusive: bool = False) -> str:
        """Seal a JSON document and store it under its hash; returns the storage ID."""
        file_id, sealed = self.seal_unpacked(doc)
        self.store.put(object_name(kind, file_id), sealed, exclusive=exclusive)
        return file_id

    def load_unpacked(self, kind: FileType, file_id: str) -> dict:
        raw = self.store.get(object_name(kind, file_id))
        if hashlib.sha256(raw).hexdigest() != file_id:
            raise IntegrityError(f"{kind.value}/{file_id} on target {self.name!r} is damaged "
                                 "(its content does not match its name)")
        try:
            return _decode_unpacked(self.key.open(raw))
        except AuthenticationFailed as err:
            raise IntegrityError(f"{kind.value}/{file_id} on target {self.name!r} does not "
                                 "authenticate") from err
        except (ValueError, zstandard.ZstdError) as err:
            raise IntegrityError(f"{kind.value}/{file_id} on target {self.name!r} is damaged: "
                                 f"it is not a readable document ({type(err).__name__})") from None

    def list_ids(self, kind: FileType) -> Iterator[tuple[str, int]]:
        """(storage id, size) of every file of one kind; skips names that are not IDs."""
        for info in self.store.list(kind.prefix):
            file_id = file_id_of(info.name)
            if len(file_id) == 64:
                yield file_id, info.size

    # -- index -----------------------------------------------------------------------------

    def load_index(self) -> None:
        self.index = Index()
        for file_id, _size in self.list_ids(FileType.INDEX):
            self.index.merge_document(file_id, self.load_unpacked(FileType.INDEX, file_id))

    def save_index(self, packs: dict[str, list[PackedBlob]], supersedes: tuple[str, ...] = ()
                   ) -> list[str]:
        """Write index files for ``packs`` (already durable); returns the new file IDs."""
        written = [self.save_unpacked(FileType.INDEX, doc)
                   for doc in index_documents(packs, supersedes)]
        self.index.files.update(written)
        return written

    # -- blobs -----------------------------------------------------------------------------

    def load_blob(self, blob_type: str, blob_id: str) -> bytes | bytearray:
        """A blob's plaintext, authenticated and checked against its ID."""
        found = self.index.lookup(blob_type, blob_id)
        if found is None:
            raise IntegrityError(f"{blob_type} blob {blob_id[:12]} is not in the index of target "
                                 f"{self.name!r}", hint="run `drorch verify` to see what is damaged")
        pack_id, blob = found
        if blob_type == TREE:
            pack = self._tree_pack(pack_id)
            return self.open_blob(pack_id, blob, memoryview(pack)[blob.offset:blob.offset + blob.length])
        sealed = self.store.get(object_name(FileType.PACK, pack_id), blob.offset, blob.length)
        return self.open_blob(pack_id, blob, sealed)

    def _tree_pack(self, pack_id: str) -> bytes:
        """A whole tree pack, kept in memory: walking a snapshot reads many small trees from
        few packs, and one request per tree is slow on object stores."""
        with self._tree_packs_lock:
            cached = self._tree_packs.pop(pack_id, None)
        if cached is None:
            cached = self.store.get(object_name(FileType.PACK, pack_id))
        with self._tree_packs_lock:
            self._tree_packs[pack_id] = cached
            while len(self._tree_packs) > TREE_PACKS_CACHED:
                self._tree_packs.pop(next(iter(self._tree_packs)))
        return cached

    def open_blob(self, pack_id: str, blob: PackedBlob, sealed: bytes | memoryview
                  ) -> bytes | bytearray:
        """Authenticate, decrypt, decompress and hash-check one blob read from a pack."""
        try:
            return unseal_blob(self.key, sealed, blob.id, blob.uncompressed_length)
        except AuthenticationFailed as err:
            raise IntegrityError(f"pack {pack_id} on target {self.name!r} is damaged: blob "
                                 f"{blob.id[:12]} {err}") from err

    def read_pack_header(self, pack_id: str, size: int) -> list[PackedBlob]:
        """The blobs a pack's own header lists (two reads at most)."""
        name = object_name(FileType.PACK, pack_id)
        tail_len = min(size, EAGER_TAIL)
        result = parse_tail(self.key, self.store.get(name, size - tail_len, tail_len), size)
        if isinstance(result, int):
            result = parse_tail(self.key, self.store.get(name, size - result, result), size)
        if isinstance(result, int):
            raise PackFormatError("pack header could not be read")
        return result


def _unlock(store: ObjectStore, password: bytes, name: str) -> Key:
    """The master key of the first key file ``password`` opens (restic's rule).

    Key files that are malformed or ask for out-of-bounds scrypt parameters are
    skipped, each named in a warning, so one planted file neither hangs nor blocks.
    """
    master = _try_keys(store, password, name)
    if master is None:
        raise WrongPassword(
            f"the key does not open the repository of target {name!r}",
            hint="check encryption.key in the policy points at the right password",
        )
    return master


def _try_keys(store: ObjectStore, password: bytes, name: str) -> Key | None:
    for key_file in keys.key_file_names(store):
        try:
            return keys.open_key_file(store.get(key_file), password)
        except keys.KeyFileRefused as err:
            warn(f"key file {file_id_of(key_file)[:12]} of target {name!r} is refused: {err}")
        except AuthenticationFailed:
            continue
    return None


def _open_half_initialised(store: ObjectStore, password: bytes, name: str) -> Key | None:
    """The master key of a store an interrupted ``init`` left with key files and no config."""
    if next(iter(store.list(FileType.KEY.prefix)), None) is None:
        return None
    master = _try_keys(store, password, name)
    if master is None:
        raise RepositoryError(
            f"target {name!r} at {store.location} has key files but no config, and the key "
            "opens none of them: another repository's initialisation was interrupted there",
            hint="point the target at an empty location, or use that repository's key")
    warn(f"target {name!r} was half-initialised by an interrupted run; completing it")
    return master


def _seals(store: ObjectStore, master: Key) -> bool:
    """Whether the stored config is sealed with ``master``."""
    try:
        master.open(store.get(CONFIG))
    except (AuthenticationFailed, ObjectNotFound):
        return False
    return True


_PAUSE_ENV = "DRORCH_TEST_PAUSE_INIT"


def _pause_for_test(point: str) -> None:
    """Crash tests only (``DRORCH_TEST_PAUSE_INIT=point``): say where init stopped, then wait
    to be killed, so a real kill -9 lands exactly between two writes."""
    if os.environ.get(_PAUSE_ENV) != point:
        return
    import sys
    import time

    sys.stderr.write(f"drorch-test: paused {point}\n")
    sys.stderr.flush()
    time.sleep(3600)


def _decode_unpacked(plain: bytes | bytearray) -> dict:
    if plain[:1] in (b"{", b"["):
        return jsoncodec.loads(plain)  # type: ignore[no-any-return]
    if plain[:1] == bytes([_ENCODING_ZSTD_JSON]):
        body = _decompressor().decompressobj().decompress(plain[1:])
        return jsoncodec.loads(body)  # type: ignore[no-any-return]
    raise IntegrityError(f"unknown file encoding {plain[:1]!r}")
