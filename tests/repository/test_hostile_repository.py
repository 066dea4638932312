"""Issue 16, repository format: hostile or damaged repository files give one sentence, never a
traceback, and never block what is still intact.

Corpora: damaged snapshot files, junk and costly key files, crafted trees, Go-quoted names,
odd timestamps, future-dated snapshots, nested walks deeper than Python's stack, locks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from pathlib import Path

import pytest

from drorch.ports.errors import IntegrityError, RepositoryLocked, WrongPassword
from drorch.providers.local import LocalStore
from drorch.repository import keys
from drorch.repository.check import Checker
from drorch.repository.crypto import Key
from drorch.repository.goquote import QuoteError, go_quote, go_unquote
from drorch.repository.layout import FileType, kept_immutable, object_name
from drorch.repository.lock import RepositoryLock
from drorch.repository.nested import run_nested
from drorch.repository.pack import TREE
from drorch.repository.prune import prune
from drorch.repository.repository import Repository
from drorch.repository.retention import apply_retention
from drorch.repository.snapshot import Snapshot, find_snapshot, load_snapshots, save_snapshot
from drorch.repository.timefmt import format_ns, now_ns, parse_ns
from drorch.repository.tree import decode_tree, encode_tree
from drorch.repository.uploader import PackUploader
from drorch.restore.restorer import Restorer

HOUR_NS = 3600 * 10**9


def _save_trees(repo: Repository, *blobs: bytes) -> list[str]:
    uploader = PackUploader(repo)
    ids = [uploader.save(TREE, blob) for blob in blobs]
    repo.save_index(uploader.flush())
    uploader.close()
    return ids


def _snapshot(repo: Repository, tree: str, time_ns: int | None = None) -> Snapshot:
    snapshot = Snapshot(time_ns or now_ns(), tree, ["/src"])
    save_snapshot(repo, snapshot)
    return snapshot


def _root_with(repo: Repository, child_json: bytes) -> str:
    """A root tree whose directory ``src`` holds the crafted tree ``child_json``."""
    [child] = _save_trees(repo, child_json)
    [root] = _save_trees(repo, encode_tree([{"name": "src", "type": "dir", "subtree": child}]))
    return root


# ----------------------------------------------------------------------------- snapshot files


def _plant(repo: Repository, raw: bytes, name: str | None = None) -> str:
    sid = name or hashlib.sha256(raw).hexdigest()
    repo.store.put(object_name(FileType.SNAPSHOT, sid), raw)
    return sid


def _sealed(repo: Repository, doc: object) -> bytes:
    return repo.seal_unpacked(doc)[1]  # type: ignore[arg-type]


DAMAGED_SNAPSHOTS = {
    "garbage": lambda repo: os.urandom(200),
    "empty": lambda repo: b"",
    "not-json": lambda repo: bytes(repo.key.seal(b"{not json")),
    "a-list": lambda repo: _sealed(repo, [1, 2]),
    "no-tree": lambda repo: _sealed(repo, {"time": "2024-01-01T00:00:00Z", "paths": ["/src"]}),
    "bad-time": lambda repo: _sealed(repo, {"time": "yesterday", "tree": "ab" * 32}),
    "paths-not-a-list": lambda repo: _sealed(repo, {"time": "2024-01-01T00:00:00Z", "tree": "ab" * 32,
                                                    "paths": "/src"}),
}


@pytest.mark.parametrize("kind", [*DAMAGED_SNAPSHOTS, "wrong-name"])
def test_one_damaged_snapshot_file_is_skipped_reported_and_stops_prune(repo, kind, caplog) -> None:
    root = _root_with(repo, encode_tree([]))
    good = [_snapshot(repo, root, now_ns() - 2 * HOUR_NS), _snapshot(repo, root)]
    if kind == "wrong-name":
        bad = _plant(repo, _sealed(repo, good[0].to_json()), "f" * 64)
    else:
        bad = _plant(repo, DAMAGED_SNAPSHOTS[kind](repo))
    with caplog.at_level(logging.WARNING, logger="drorch"):
        listed = load_snapshots(repo)
    assert [s.id for s in listed] == [s.id for s in good]
    assert list(repo.damaged_snapshots) == [bad]
    assert any(bad in r.getMessage() and "skipped" in r.getMessage() for r in caplog.records)
    report = Checker(repo).run()
    assert not report.ok and any(bad in e for e in report.errors), report
    pruned = prune(repo)
    assert pruned.packs_deleted == 0 and "damaged" in pruned.kept_reasons[0]
    assert find_snapshot(listed, "latest").id == good[1].id


def test_a_listing_reads_only_new_snapshot_files_and_check_reads_every_one(repo, monkeypatch) -> None:
    """A file is named by the SHA-256 of its bytes, so one already read through this
    repository object is not read again; check reads them all again, so damage done since
    the last listing still shows."""
    root = _root_with(repo, encode_tree([]))
    first = _snapshot(repo, root, now_ns() - HOUR_NS)
    assert [s.id for s in load_snapshots(repo)] == [first.id]
    second = _snapshot(repo, root)
    reads: list[str] = []
    real_get = repo.store.get

    def get(name: str, *args: object, **kwargs: object) -> bytes:  # records, then reads for real
        reads.append(name)
        return real_get(name, *args, **kwargs)

    monkeypatch.setattr(repo.store, "get", get)

    listed = load_snapshots(repo)
    assert [s.id for s in listed] == [first.id, second.id]
    assert reads == [object_name(FileType.SNAPSHOT, second.id)], "a snapshot file was read again"
    listed[0].tags.append("changed by a caller")
    assert load_snapshots(repo)[0].tags == [], "callers share no snapshot object"

    path = Path(repo.store.root) / object_name(FileType.SNAPSHOT, first.id)
    path.write_bytes(os.urandom(200))  # damaged after it was read
    report = Checker(repo).run()
    assert not report.ok and any(first.id in e for e in report.errors), report


# ----------------------------------------------------------------------------- key files


def _key_doc(**changes: object) -> dict:
    _, raw = keys.new_key_file(Key.random(), b"x")
    doc = json.loads(raw)
    doc.update(changes)
    return doc


JUNK_KEYS = {
    "a-list": lambda: b"[1, 2, 3]",
    "not-json": lambda: b"\x00\x01 not json",
    "salt-not-a-string": lambda: json.dumps(_key_doc(salt=12345)).encode(),
    "salt-too-short": lambda: json.dumps(_key_doc(salt=base64.b64encode(b"s" * 8).decode())).encode(),
    "data-missing": lambda: json.dumps({k: v for k, v in _key_doc().items() if k != "data"}).encode(),
    "data-not-base64": lambda: json.dumps(_key_doc(data="!!!")).encode(),
    "other-kdf": lambda: json.dumps(_key_doc(kdf="argon2")).encode(),
    "N-a-string": lambda: json.dumps(_key_doc(N="32768")).encode(),
    "N-not-a-power-of-two": lambda: json.dumps(_key_doc(N=30000)).encode(),
    "N-huge": lambda: json.dumps(_key_doc(N=2**40)).encode(),
    "r-huge": lambda: json.dumps(_key_doc(r=2**20)).encode(),
    "p-huge": lambda: json.dumps(_key_doc(p=2**20)).encode(),
    "memory-huge": lambda: json.dumps(_key_doc(N=2**20, r=32)).encode(),
}


@pytest.fixture
def keyed_repo(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path / "repo")
    Repository.init(store, b"pw", "test")
    return store


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", list(JUNK_KEYS))
def test_a_junk_or_costly_key_file_is_refused_by_name_and_the_next_one_opens(keyed_repo, kind, caplog
                                                                             ) -> None:
    planted = "0" * 63 + "1"  # listed before the real key file
    keyed_repo.put(object_name(FileType.KEY, planted), JUNK_KEYS[kind]())
    with caplog.at_level(logging.WARNING, logger="drorch"):
        repo = Repository.open(keyed_repo, b"pw", "test")
    assert repo.config.version == 2
    [record] = [r for r in caplog.records if planted[:12] in r.getMessage()]
    assert "refused" in record.getMessage()


@pytest.mark.timeout(60)
def test_only_junk_key_files_is_a_wrong_password_not_a_hang(keyed_repo) -> None:
    for name in [i.name for i in keyed_repo.list("keys/")]:
        keyed_repo.delete(name)
    keyed_repo.put("keys/" + "0" * 64, JUNK_KEYS["N-huge"]())
    with pytest.raises(WrongPassword):
        Repository.open(keyed_repo, b"pw", "test")


@pytest.mark.parametrize(("n", "r", "p"), [(2**15, 8, 1), (2**16, 8, 1), (2**15, 8, 16), (2**17, 8, 4)])
def test_parameters_restic_calibrates_are_accepted(n: int, r: int, p: int) -> None:
    keys.check_scrypt_parameters(n, r, p)


# ----------------------------------------------------------------------------- crafted trees

CRAFTED_TREES = {
    "nodes-not-a-list": b'{"nodes": 5}\n',
    "a-list-not-an-object": b"[1, 2]\n",
    "node-not-an-object": b'{"nodes": ["x"]}\n',
    "no-name": b'{"nodes": [{"type": "file", "content": []}]}\n',
    "no-type": b'{"nodes": [{"name": "a", "content": []}]}\n',
    "dir-without-subtree": b'{"nodes": [{"name": "a", "type": "dir"}]}\n',
    "subtree-not-a-string": b'{"nodes": [{"name": "a", "type": "dir", "subtree": 5}]}\n',
    "content-not-a-list": b'{"nodes": [{"name": "a", "type": "file", "content": "ab"}]}\n',
    "not-json": b'{"nodes": [\n',
}
BAD_METADATA = {
    "bad-mtime": b'{"nodes": [{"name": "a", "type": "file", "content": [], "mtime": "soon"}]}\n',
    "mtime-a-number": b'{"nodes": [{"name": "a", "type": "symlink", "linktarget": "x", "mtime": 5}]}\n',
    "duplicate-names": (b'{"nodes": [{"name": "a", "type": "file", "content": []},'
                        b'{"name": "a", "type": "symlink", "linktarget": "/etc"}]}\n'),
    "slash-in-name": b'{"nodes": [{"name": "../x", "type": "file", "content": []}]}\n',
}


@pytest.mark.parametrize("kind", [*CRAFTED_TREES, *BAD_METADATA])
def test_verify_reports_a_crafted_tree_in_one_line(repo, kind) -> None:
    blob = CRAFTED_TREES.get(kind) or BAD_METADATA[kind]
    _snapshot(repo, _root_with(repo, blob))
    report = Checker(repo).run()
    assert not report.ok
    problems = [*report.errors, *report.damaged_packs.values()]
    assert len(problems) == 1 and "\n" not in problems[0], problems


@pytest.mark.parametrize("kind", [*CRAFTED_TREES, "bad-mtime", "mtime-a-number", "slash-in-name"])
def test_restore_of_a_crafted_tree_is_an_integrity_error(repo, tmp_path, kind) -> None:
    blob = CRAFTED_TREES.get(kind) or BAD_METADATA[kind]
    root = _root_with(repo, blob)
    # The restorer names a bad entry and restores its siblings (tests/restore/test_damaged_data.py);
    # a tree that is not a list of nodes at all is an IntegrityError. Either way: one line each.
    try:
        stats = Restorer(repo).restore(root, tmp_path / "out", strip=("src",))
    except IntegrityError as caught:
        assert "\n" not in str(caught)
        return
    reported = [str(d) for d in stats.damaged] + stats.warnings
    assert reported and all("\n" not in line for line in reported), reported


# ----------------------------------------------------------------------------- names

# (name, what Go's strconv.Quote makes of it without the outer quotes)
GO_QUOTED = [
    ("plain.txt", "plain.txt"),
    ('say "hi"', 'say \\"hi\\"'),
    ("back\\slash", "back\\\\slash"),
    ("new\nline", "new\\nline"),
    ("tab\tand\rcr", "tab\\tand\\rcr"),
    ("bell\a", "bell\\a"),
    ("del\x7f", "del\\x7f"),
    ("nul\x01", "nul\\x01"),
    (os.fsdecode(b"latin1-\xe9"), "latin1-\\xe9"),
    (os.fsdecode(b"\xff\xfe"), "\\xff\\xfe"),
    (os.fsdecode(b"cut-\xe2\x82"), "cut-\\xe2\\x82"),
    ("caf\u00e9", "caf\u00e9"),
    ("nbsp\u00a0", "nbsp\\u00a0"),
    ("zero\u200bwidth", "zero\\u200bwidth"),
    ("emoji\U0001F600", "emoji\U0001F600"),
    ("private\U000F0000", "private\\U000f0000"),
]


@pytest.mark.parametrize(("name", "quoted"), GO_QUOTED)
def test_names_are_quoted_and_unquoted_like_go(name: str, quoted: str) -> None:
    assert go_quote(name) == quoted
    assert go_unquote(quoted) == name


@pytest.mark.parametrize("text", ['a"b', "a\\", "\\q", "\\ud800", "\\x4", "raw\nnewline", "\\400", "\\'"])
def test_what_go_cannot_unquote_is_refused(text: str) -> None:
    with pytest.raises(QuoteError):
        go_unquote(text)


def test_tree_names_round_trip_and_sort_by_bytes() -> None:
    names = [n for n, _ in GO_QUOTED]
    nodes = decode_tree(encode_tree([{"name": n, "type": "file", "content": []} for n in names]))
    assert [n["name"] for n in nodes] == sorted(names, key=os.fsencode)


# ----------------------------------------------------------------------------- timestamps

# restic clamps years outside 0000-9999 (node.go fixTime); Go's AddDate normalises 29 February.
ODD_TIMES = [
    (-1, "1969-12-31T23:59:59Z"),
    (253402300800, "9999-01-01T00:00:00Z"),  # 10000-01-01
    (253407398400, "9999-03-01T00:00:00Z"),  # 10000-02-29, a day 9999 does not have
    (1099511627776, "9999-02-20T00:36:16Z"),  # 2^40 s: year 36812
    (-62167219201, "0000-12-31T23:59:59Z"),  # the last second of year -1
    (-10**14, "0000-02-24T14:13:20Z"),
]


@pytest.mark.parametrize(("seconds", "text"), ODD_TIMES)
def test_odd_years_are_clamped_like_restic(seconds: int, text: str) -> None:
    assert format_ns(seconds * 10**9) == text
    assert format_ns(parse_ns(text)) == text


# ----------------------------------------------------------------------------- clock skew


def _snap(sid: str, hours_from_now: float) -> Snapshot:
    return Snapshot(now_ns() + int(hours_from_now * HOUR_NS), "t", ["/src"], id=sid)


@pytest.mark.parametrize("rules", [{"last": 1}, {"hourly": 1}, {"daily": 1}, {"last": 2}])
def test_a_future_snapshot_never_makes_retention_forget_the_one_just_taken(rules) -> None:
    future, old, just_taken = _snap("future", 24 * 365), _snap("old", -5), _snap("new", 0)
    decision = apply_retention([old, future, just_taken], rules)
    kept = {s.id for s in decision.keep}
    assert {"future", "new"} <= kept
    assert "future" not in {s.id for s in decision.forget}


def test_latest_is_the_newest_snapshot_not_in_the_future() -> None:
    snapshots = [_snap("old", -5), _snap("new", 0), _snap("future", 24 * 365)]
    assert find_snapshot(snapshots, "latest").id == "new"
    assert find_snapshot([_snap("slightly-ahead", 0.01), _snap("new", 0)], "latest").id == "slightly-ahead"
    assert find_snapshot([_snap("only-future", 48)], "latest").id == "only-future"


# ----------------------------------------------------------------------------- depth


def test_nested_walks_go_deeper_than_the_python_stack() -> None:
    def depth(n: int):  # type: ignore[no-untyped-def]
        if n == 0:
            return 0
        below = yield depth(n - 1)
        return below + 1

    assert run_nested(depth(50_000)) == 50_000


def test_a_subwalk_error_is_raised_at_the_yield_of_its_caller() -> None:
    def walk(n: int):  # type: ignore[no-untyped-def]
        if n == 0:
            raise KeyError("bottom")
        try:
            return (yield walk(n - 1))
        except KeyError:
            if n == 3000:
                return "caught"
            raise

    assert run_nested(walk(5000)) == "caught"


# ----------------------------------------------------------------------------- locks


def test_readers_share_with_a_writer_writers_exclude_each_other(repo) -> None:
    with RepositoryLock(repo, exclusive=False, writer=True).acquire():
        with RepositoryLock(repo, exclusive=False).acquire():
            pass  # a restore or verify while apply runs
        with pytest.raises(RepositoryLocked):
            RepositoryLock(repo, exclusive=False, writer=True).acquire()


def test_retention_upgrade_waits_for_readers_and_keeps_the_shared_lock(repo) -> None:
    writer = RepositoryLock(repo, exclusive=False, writer=True).acquire()
    reader = RepositoryLock(repo, exclusive=False).acquire()
    with pytest.raises(RepositoryLocked), writer.exclusively():
        pass
    assert not writer.exclusive and writer.id
    reader.release()
    with writer.exclusively(), pytest.raises(RepositoryLocked):
        RepositoryLock(repo, exclusive=False).acquire()
    writer.release()
    assert list(repo.list_ids(FileType.LOCK)) == []


def test_lock_files_are_the_only_objects_not_kept_immutable() -> None:
    assert not kept_immutable("locks/" + "a" * 64)
    for name in ("config", "keys/ab", "data/ab/abcd", "index/ab", "snapshots/ab"):
        assert kept_immutable(name)
