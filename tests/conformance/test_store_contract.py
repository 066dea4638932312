"""The ObjectStore contract (drorch/ports/store.py), run unchanged against every adapter.

Backends: local (file://), s3 (moto server), gcs (gcp-storage-emulator),
azure (Azurite), libcloud (local driver). What a backend cannot be tested for is
skipped with the reason; what its emulator gets wrong is a strict xfail
(see conftest.py).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from drorch.ports.errors import (
    AccessDenied,
    ObjectExists,
    ObjectNotFound,
    StoreError,
    TransientStoreError,
)
from drorch.ports.store import ObjectStore, get_into, immutability_problem, reads_into
from drorch.storage.retry import RetryingStore

from support.cloud_emulators import FaultProxy, closed_port
from support.store_backends import LocalBackend, MiB

# libcloud's local driver filters listings client-side and says so on every list (providers/libcloud_store.py
# silences it for the CLI; pytest resets warning filters per test).
pytestmark = pytest.mark.filterwarnings("ignore:Driver .* does not implement native object filtering")


def fast_retries(store: ObjectStore) -> RetryingStore:
    """The production wrapper with waits short enough for a test."""
    return RetryingStore(store, attempts=6, max_wait_s=0.05, give_up_after_s=30)


def one_sentence(err: Exception, *words: str) -> str:
    text = str(err)
    assert text and "\n" not in text, f"not one sentence: {text!r}"
    assert "Traceback" not in text
    for word in words:
        assert word.lower() in text.lower(), f"{word!r} not in {text!r}"
    return text


# ----------------------------------------------------------------------------- put, get, exists


def test_put_then_get_returns_the_same_bytes(store):
    blobs = {"config": b"{}", "empty": b"", "data/ab/abcdef": os.urandom(300_000),
             "keys/0123": bytes(range(256)) * 4}
    for name, data in blobs.items():
        store.put(name, data)
    for name, data in blobs.items():
        assert store.get(name) == data


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_put_accepts_any_bytes_like(store, kind):
    store.put("obj", kind(b"bytes-like"))
    assert store.get("obj") == b"bytes-like"


def test_get_of_a_missing_name_is_object_not_found(store):
    with pytest.raises(ObjectNotFound) as caught:
        store.get("data/00/missing")
    one_sentence(caught.value, "data/00/missing")


def test_ranged_get(store):
    data = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable
    store.put("data/pack", data)
    assert store.get("data/pack", 1000, 24) == data[1000:1024]  # the middle
    assert store.get("data/pack", 10000) == data[10000:]  # to the end
    assert store.get("data/pack", 10000, None) == data[10000:]
    assert store.get("data/pack", 0, 5) == data[:5]  # from the start
    assert store.get("data/pack", len(data) - 1, 1) == data[-1:]  # the last byte
    assert store.get("data/pack", 10, 0) == b""  # zero length


def test_ranged_get_into_memory(backend, store):
    """How restore reads packs: into memory it reuses (the adapter's ``get_into``, or ``get``
    and a copy), straight or through the retrying wrapper."""
    data = bytes(range(256)) * 40
    store.put("data/pack", data)
    for reader in (store, fast_retries(store)):
        into = memoryview(bytearray(64))
        assert get_into(reader, "data/pack", 1000, into[:24]) == 24
        assert bytes(into[:24]) == data[1000:1024] and bytes(into[24:]) == bytes(40)
        assert get_into(reader, "data/pack", 0, into) == 64 and bytes(into) == data[:64]
        with pytest.raises(ObjectNotFound):
            get_into(reader, "data/00/missing", 0, into)
    assert reads_into(fast_retries(store)) == reads_into(store) == isinstance(backend, LocalBackend)


def test_exists(store):
    assert not store.exists("config")
    store.put("config", b"x")
    assert store.exists("config")
    assert not store.exists("conf")  # a prefix of a name is not the name


# ----------------------------------------------------------------------------- list


def test_list_yields_names_relative_to_the_target_and_only_matching(backend, bucket, store):
    names = {"data/ab/ab01": 3, "data/ab/ab02": 5, "data/cd/cd01": 7, "index/i1": 11, "config": 13}
    for name, size in names.items():
        store.put(name, b"x" * size)
    neighbour = backend.open(bucket, prefix="repo2")  # shares the bucket and the first characters
    neighbour.put("data/ab/ab99", b"not mine")

    listed = {info.name: info.size for info in store.list("data/")}
    assert listed == {k: v for k, v in names.items() if k.startswith("data/")}
    assert {i.name for i in store.list("data/ab/")} == {"data/ab/ab01", "data/ab/ab02"}
    assert {i.name for i in store.list("")} == set(names)
    assert list(store.list("snapshots/")) == []
    assert {i.name for i in neighbour.list("")} == {"data/ab/ab99"}


def test_list_reports_when_each_object_was_written(store):
    """Prune keeps objects still under retention by this time, so every adapter must report it."""
    before = time.time()
    store.put("data/ab/ab01", b"x")
    [info] = store.list("data/")
    assert info.modified is not None, "the adapter does not report modification times"
    assert before - 120 < info.modified < time.time() + 120, (before, info.modified)


def test_list_pages_past_1000_names(backend, request, store):
    """Stores answer lists in pages of (at most) 1000; every page must be read."""
    backend.check("pagination", request)
    names = {f"keys/{i:05d}" for i in range(1005)}
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda name: store.put(name, b""), sorted(names)))
    store.put("locks/other", b"")
    assert sorted(i.name for i in store.list("keys/")) == sorted(names)


# ----------------------------------------------------------------------------- delete


def test_delete_removes_and_deleting_a_missing_name_is_fine(store):
    store.put("locks/l1", b"lock")
    store.delete("locks/l1")
    assert not store.exists("locks/l1")
    assert list(store.list("locks/")) == []
    store.delete("locks/l1")  # again: deletes are retried, so a missing name is success
    store.delete("locks/never-was")


# ----------------------------------------------------------------------------- create-if-absent


def test_exclusive_put_refuses_an_existing_name(backend, request, store):
    backend.check("exclusive", request)
    store.put("config", b"first", exclusive=True)
    with pytest.raises(ObjectExists) as caught:
        store.put("config", b"second", exclusive=True)
    one_sentence(caught.value, "config")
    assert store.get("config") == b"first"


def test_exclusive_put_racing_writers_have_one_winner(backend, request, store):
    backend.check("exclusive_race", request)
    writers = 6
    start = threading.Barrier(writers)
    outcomes: dict[int, str] = {}

    def write(i: int) -> None:
        start.wait()
        try:
            store.put("locks/the-one", f"writer {i}".encode(), exclusive=True)
            outcomes[i] = "won"
        except ObjectExists:
            outcomes[i] = "refused"

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1, outcomes
    assert store.get("locks/the-one") == f"writer {winners[0]}".encode()


def test_non_exclusive_put_overwrites(store):
    store.put("index/i1", b"old")
    store.put("index/i1", b"new")
    assert store.get("index/i1") == b"new"


# ----------------------------------------------------------------------------- large objects


def test_large_object_goes_up_in_parts(backend, bucket, request, monkeypatch):
    """~12 MiB with the threshold lowered: multipart (S3), resumable (GCS), staged blocks (Azure)."""
    data = os.urandom(12 * MiB + 12345)
    proxy = FaultProxy(backend.upstream) if backend.http else None
    try:
        store = backend.open(bucket, endpoint=proxy.url if proxy else None)
        backend.small_parts(store, monkeypatch)
        store.put("data/big", data)
        if proxy:
            writes = [r for r in proxy.seen if r[0] in ("PUT", "POST")]
            assert len(writes) > 2, f"expected the object in several requests, saw {proxy.seen}"
        assert store.get("data/big") == data
        boundary = 4 * MiB
        assert store.get("data/big", boundary - 100, 200) == data[boundary - 100:boundary + 100]
        assert [(i.name, i.size) for i in store.list("data/")] == [("data/big", len(data))]
    finally:
        if proxy:
            proxy.close()


def test_large_exclusive_put_still_refuses_an_existing_name(backend, request, bucket, monkeypatch):
    backend.check("exclusive", request)
    store = backend.open(bucket)
    backend.small_parts(store, monkeypatch)
    store.put("data/big", b"small and first", exclusive=True)
    with pytest.raises(ObjectExists):
        store.put("data/big", os.urandom(12 * MiB), exclusive=True)
    assert store.get("data/big") == b"small and first"


# ----------------------------------------------------------------------------- immutability


def test_a_bucket_without_object_lock_is_reported_as_a_problem(store):
    """Every test bucket is created without object lock / retention, so immutable_days cannot hold."""
    problem = immutability_problem(store, 30)
    assert problem and "\n" not in problem, problem
    assert "immutab" in problem.lower() or "lock" in problem.lower() or "retention" in problem.lower()


# ----------------------------------------------------------------------------- failures


def test_missing_bucket_is_one_sentence_naming_it(backend, request):
    backend.check("missing_bucket", request)
    missing = "drorch-no-such-bucket"
    store = backend.open(missing)
    for attempt in (lambda: store.put("config", b"x"), lambda: store.get("config"),
                    lambda: list(store.list("keys/"))):
        with pytest.raises(StoreError) as caught:
            attempt()
        assert not isinstance(caught.value, ObjectNotFound | TransientStoreError), repr(caught.value)
        one_sentence(caught.value, missing, "does not exist")


def test_adapter_does_not_retry_by_itself(backend, request, bucket):
    """Retries live in drorch.storage.retry only: one throttled reply reaches the caller as transient."""
    backend.check("throttling", request)
    backend.check("no_sdk_retries", request)
    assert backend.throttled is not None
    with FaultProxy(backend.upstream) as proxy:
        raw = backend.open(bucket, endpoint=proxy.url)
        for attempt in (lambda: raw.put("config", b"x"), lambda: raw.get("config")):
            proxy.fail_next(1, backend.throttled)
            with pytest.raises(TransientStoreError) as caught:
                attempt()
            one_sentence(caught.value)
            assert proxy.failed == 0


def test_throttling_is_retried_by_the_wrapper(backend, request, bucket):
    backend.check("throttling", request)
    assert backend.throttled is not None
    with FaultProxy(backend.upstream) as proxy:
        raw = backend.open(bucket, endpoint=proxy.url)
        proxy.fail_next(2, backend.throttled)
        with pytest.raises(TransientStoreError):
            raw.put("config", b"x")  # (S3: botocore's own retry uses up the second)

        store = fast_retries(raw)
        for attempt in (lambda: store.put("data/p1", b"payload"), lambda: store.get("data/p1"),
                        lambda: store.exists("data/p1"), lambda: list(store.list("data/")),
                        lambda: store.delete("data/p1")):
            proxy.fail_next(2, backend.throttled)
            attempt()
            assert proxy.failed == 0, "the proxy did not see the throttled requests"
        assert not raw.exists("data/p1")


def test_access_denied_is_one_sentence(backend, request, bucket):
    backend.check("access_denied", request)
    with backend.denied(bucket) as store, pytest.raises(AccessDenied) as caught:
        store.put("data/x", b"x")
    one_sentence(caught.value, "access denied", "data/x")


def test_unreachable_endpoint_is_transient(backend, request, bucket):
    backend.check("unreachable", request)
    port = closed_port()
    path = backend.upstream.split("://", 1)[1].partition("/")[2]
    store = backend.open(bucket, endpoint=f"http://127.0.0.1:{port}/{path}".rstrip("/"))
    with pytest.raises(TransientStoreError) as caught:
        store.get("config")
    one_sentence(caught.value, "unreachable")
