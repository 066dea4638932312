"""A damaged repository: restore everything intact, name what is not (with its blobs), exit 3,
and leave no file that looks complete but is not (damaged files become NAME.drorch-damaged).

restic is the floor: every file stock restic restores intact from the same
damaged repository, drorch restores intact too.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from drorch.repository.pack import TREE

CHUNK = 65536  # Crafted.file cuts content into blobs of this size


def _restore(crafted, snap, to, drorch_env, e2e):
    proc = e2e.run_drorch("restore", crafted.policy, snap[:12], "--to", to, "--json", env=drorch_env)
    sentence = e2e.assert_one_error(proc, 3, "not restored intact")
    import json

    return json.loads(proc.stdout), sentence


def _by_path(doc):
    return {d["path"]: d for d in doc["damaged"]}


def _small_file_damaged(c):
    bad = c.file("bad.txt", b"damaged\n" * 100)
    c.damage_blob(bad["content"][0])
    return [bad, c.file("good.txt", b"intact\n")], {"bad.txt": 1}


def _middle_blob_damaged(c):
    data = os.urandom(3 * CHUNK)
    big = c.file("big.bin", data)
    c.damage_blob(big["content"][1])
    return [big, c.file("good.bin", os.urandom(CHUNK + 5))], {"big.bin": 1}


def _shared_blob_damaged(c):
    data = os.urandom(1000)
    one, two = c.file("one.bin", data), c.file("two.bin", data)
    c.damage_blob(one["content"][0])
    return [one, two, c.file("other.bin", os.urandom(1000))], {"one.bin": 1, "two.bin": 1}


def _hardlinked_file_damaged(c):
    data = os.urandom(2000)
    first = c.file("first", data, inode=77, links=2, device_id=9)
    second = c.file("second", data, inode=77, links=2, device_id=9)
    c.damage_blob(first["content"][0])
    return [first, second, c.file("third", b"ok\n")], {"first": 1, "second": 1}


def _pack_deleted(c):
    lost = [c.file(f"lost{i}.bin", os.urandom(3000)) for i in range(3)]
    c.flush()
    c.pack_of(lost[0]["content"][0]).unlink()
    return [*lost, c.file("kept.bin", os.urandom(3000))], {f"lost{i}.bin": 1 for i in range(3)}


def _pack_truncated(c):
    lost = c.file("lost.bin", os.urandom(5000))
    c.flush()
    pack = c.pack_of(lost["content"][0])
    pack.chmod(0o644)
    pack.write_bytes(pack.read_bytes()[:100])
    return [lost, c.file("kept.bin", os.urandom(3000))], {"lost.bin": 1}


def _blob_not_in_index(c):
    node = c.file("ghost.bin", b"x")
    node["content"] = [hashlib.sha256(b"never stored").hexdigest()]
    return [node, c.file("kept.txt", b"kept\n")], {"ghost.bin": 1}


def _tree_damaged(c):
    sub = c.dir("sub", [c.file("inside.txt", b"inside\n")])
    c.damage_blob(sub["subtree"], TREE)
    return [sub, c.file("kept.txt", b"kept\n")], {"sub": 1}


def _damaged_name_taken(c):
    bad = c.file("a", b"damaged\n")
    c.damage_blob(bad["content"][0])
    return [bad, c.file("a.drorch-damaged", b"an intact sibling\n")], {"a": 1}


CASES = [
    pytest.param(_small_file_damaged, id="one-blob-file"),
    pytest.param(_middle_blob_damaged, id="middle-blob-of-three"),
    pytest.param(_shared_blob_damaged, id="blob-shared-by-two-files"),
    pytest.param(_hardlinked_file_damaged, id="hardlinked-file"),
    pytest.param(_pack_deleted, id="pack-deleted"),
    pytest.param(_pack_truncated, id="pack-truncated"),
    pytest.param(_blob_not_in_index, id="blob-not-in-index"),
    pytest.param(_tree_damaged, id="subtree-damaged"),
    pytest.param(_damaged_name_taken, id="damaged-name-taken-by-a-sibling"),
]


@pytest.mark.parametrize("build", CASES)
def test_damage_is_named_and_set_aside(tmp_path, crafted, drorch_env, e2e, build):
    nodes, damaged = build(crafted)
    snap = crafted.snapshot(nodes)
    to = tmp_path / "to"
    doc, sentence = _restore(crafted, snap, to, drorch_env, e2e)
    found = _by_path(doc)
    assert set(found) == set(damaged), doc["damaged"]
    for name, entry in found.items():
        assert name in sentence
        assert entry["blobs"], entry
        assert entry["blobs"][0][:12] in sentence
        # nothing under the restored name: a damaged file is set aside, a directory not made
        assert not os.path.lexists(to / name)
        if entry["left_as"]:
            assert entry["left_as"] == name + ".drorch-damaged"
            assert (to / entry["left_as"]).is_file()
    by_name = {n["name"]: n for n in nodes}
    for name, node in by_name.items():
        if name not in damaged and node["type"] == "file":
            want = b"".join(crafted.repo.load_blob("data", b) for b in node["content"])
            assert (to / name).read_bytes() == want, f"{name} was not restored intact"


def test_intact_parts_of_a_damaged_file_are_kept_in_place(tmp_path, crafted, drorch_env, e2e):
    data = os.urandom(3 * CHUNK)
    node = crafted.file("big.bin", data)
    crafted.damage_blob(node["content"][1])
    snap = crafted.snapshot([node])
    doc, _ = _restore(crafted, snap, tmp_path / "to", drorch_env, e2e)
    [entry] = doc["damaged"]
    assert entry["blobs"] == [node["content"][1]]
    kept = (tmp_path / "to" / "big.bin.drorch-damaged").read_bytes()
    assert len(kept) == len(data)
    assert kept[:CHUNK] == data[:CHUNK] and kept[2 * CHUNK:] == data[2 * CHUNK:]
    assert kept[CHUNK:2 * CHUNK] == bytes(CHUNK)


@pytest.mark.restic
def test_restic_is_the_floor(tmp_path, dataset, drorch_env, drorch_key, restic, e2e):
    """Damage one blob of a real backup; what restic restores intact, drorch does too."""
    from drorch.providers.local import LocalStore
    from drorch.repository.repository import Repository

    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo")
    e2e.apply_ok(policy, drorch_env)
    repo = Repository.open(LocalStore(tmp_path / "repo"), drorch_key.encode(), "local")
    repo.load_index()
    small = hashlib.sha256((dataset / "small.bin").read_bytes()).hexdigest()  # one chunk
    pack_id, blob = repo.index.lookup("data", small)
    pack = tmp_path / "repo" / "data" / pack_id[:2] / pack_id
    raw = bytearray(pack.read_bytes())
    raw[blob.offset + 40] ^= 0x55
    pack.chmod(0o644)
    pack.write_bytes(bytes(raw))

    restic("restore", "latest", "--target", tmp_path / "by-restic", repo=tmp_path / "repo", check=False)
    by_restic = e2e.restic_restored_root(tmp_path / "by-restic", dataset)
    source = e2e.tree_state(dataset, mtimes=False, owners=False)
    restic_intact = {rel for rel, v in e2e.tree_state(by_restic, mtimes=False, owners=False).items()
                     if v == source.get(rel)}
    to = tmp_path / "by-drorch"
    proc = e2e.run_drorch("restore", policy, "latest", "--to", to, "--json", env=drorch_env)
    e2e.assert_one_error(proc, 3, "small.bin")
    got = e2e.tree_state(to, mtimes=False, owners=False)
    drorch_intact = {rel for rel, v in got.items() if v == source.get(rel)}
    assert restic_intact - {"small.bin"} <= drorch_intact
    assert drorch_intact == set(source) - {"small.bin"}
    assert "small.bin" not in got and "small.bin.drorch-damaged" in got


def _unknown_type(c):
    return [{"name": "odd", "type": "weird", "mode": 0o644}, c.file("kept.txt", b"kept\n")], "odd"


def _dir_without_subtree(c):
    node = c.dir("sub", [])
    del node["subtree"]
    return [node, c.file("kept.txt", b"kept\n")], "sub"


def _tree_not_json(c):
    node = c.dir("sub", [])
    c.repo  # noqa: B018
    node["subtree"] = c._uploader.save(TREE, b"this is not a tree\n")
    return [node, c.file("kept.txt", b"kept\n")], "sub"


def _tree_of_wrong_shape(c):
    node = c.dir("sub", [])
    node["subtree"] = c._uploader.save(TREE, b'{"nodes": [1, 2]}\n')
    return [node, c.file("kept.txt", b"kept\n")], "sub"


@pytest.mark.parametrize("build", [
    pytest.param(_unknown_type, id="unknown-node-type"),
    pytest.param(_dir_without_subtree, id="dir-without-subtree"),
    pytest.param(_tree_not_json, id="subtree-not-json"),
    pytest.param(_tree_of_wrong_shape, id="subtree-of-wrong-shape"),
])
def test_malformed_trees_are_named_not_tracebacks(tmp_path, crafted, drorch_env, e2e, build):
    nodes, named = build(crafted)
    snap = crafted.snapshot(nodes)
    to = tmp_path / "to"
    proc = e2e.run_drorch("restore", crafted.policy, snap[:12], "--to", to, "--quiet", env=drorch_env)
    e2e.assert_one_error(proc, 3, named, "not restored intact")
    assert (to / "kept.txt").read_bytes() == b"kept\n"


@pytest.mark.parametrize("field, value", [("mtime", "yesterday"), ("mtime", "99999-01-01T00:00:00Z"),
                                          ("mode", "rw-r--r--")])
def test_a_bad_metadata_field_is_a_warning(tmp_path, crafted, drorch_env, e2e, field, value):
    """The content is intact; only what the field says cannot be applied (exit 0, warned)."""
    node = crafted.file("f.txt", b"content\n")
    node[field] = value
    snap = crafted.snapshot([node])
    to = tmp_path / "to"
    proc = e2e.run_drorch("restore", crafted.policy, snap[:12], "--to", to, "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert (to / "f.txt").read_bytes() == b"content\n"
    assert "warning:" in proc.stderr and "f.txt" in proc.stderr and "Traceback" not in proc.stderr


def test_the_python_api_raises_after_restoring_the_rest(tmp_path, crafted, monkeypatch, drorch_key):
    """API callers (runbook restore steps, drills) cannot mistake a damaged restore for a good one."""
    import drorch
    from drorch.ports.errors import IntegrityError

    bad = crafted.file("bad.txt", b"bad\n")
    crafted.damage_blob(bad["content"][0])
    snap = crafted.snapshot([bad, crafted.file("good.txt", b"good\n")])
    monkeypatch.setenv("DRORCH_KEY", drorch_key)
    policy = drorch.load_policy(crafted.policy)
    with pytest.raises(IntegrityError) as raised:
        drorch.restore(policy, drorch.key_source(policy.encryption), snap[:12], tmp_path / "to")
    assert raised.value.exit_code == 3 and "bad.txt" in str(raised.value)
    assert [d["path"] for d in raised.value.damaged] == ["bad.txt"]
    assert (tmp_path / "to" / "good.txt").read_bytes() == b"good\n"
