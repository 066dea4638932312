"""Restore never writes, chmods, chowns or touches anything outside --to, whatever the repository holds.

Each case is a crafted snapshot (or a link planted in --to before the restore)
that used to make restore write through a symlink; afterwards the directory
the links point at must be exactly as before.
"""

from __future__ import annotations

import os
import stat

import pytest

DATA = b"written by the crafted snapshot\n"


def _dir_then_link(c, outside):
    return [c.dir("a", [c.file("x", DATA, mode=0o777)]), c.symlink("a", str(outside))]


def _link_then_dir(c, outside):
    return [c.symlink("a", str(outside)), c.dir("a", [c.file("victim.txt", DATA, mode=0o777)])]


def _file_then_link(c, outside):
    return [c.file("a", DATA, mode=0o777), c.symlink("a", str(outside / "victim.txt"))]


def _link_then_file(c, outside):
    return [c.symlink("a", str(outside / "victim.txt")), c.file("a", DATA, mode=0o777)]


def _deep_dir_then_link(c, outside):
    inner = [c.dir("sub", [c.file("inner.txt", DATA)]), c.symlink("sub", str(outside / "sub"))]
    return [c.dir("d", [c.dir("e", inner)])]


def _dot_dot(c, outside):
    return [c.dir("..", [c.file("victim.txt", DATA)]), c.file("ok.txt", b"ok\n")]


def _slash_in_name(c, outside):
    return [c.file("../outside/victim.txt", DATA), c.file("ok.txt", b"ok\n")]


DUPLICATES = [  # (builder, the name stderr must name)
    pytest.param(_dir_then_link, "a", id="dir-then-symlink"),
    pytest.param(_link_then_dir, "a", id="symlink-then-dir"),
    pytest.param(_file_then_link, "a", id="file-then-symlink"),
    pytest.param(_link_then_file, "a", id="symlink-then-file"),
    pytest.param(_deep_dir_then_link, "d/e/sub", id="nested-dir-then-symlink"),
    pytest.param(_dot_dot, "..", id="entry-named-dot-dot"),
    pytest.param(_slash_in_name, "../outside/victim.txt", id="entry-with-a-slash"),
]


@pytest.mark.parametrize("build, named", DUPLICATES)
def test_crafted_tree_cannot_write_outside(tmp_path, crafted, outside, fingerprint, drorch_env, e2e,
                                           build, named):
    before = fingerprint(outside)
    snap = crafted.snapshot(build(crafted, outside))
    to = tmp_path / "to"
    proc = e2e.run_drorch("restore", crafted.policy, snap[:12], "--to", to, "--quiet", env=drorch_env)
    sentence = e2e.assert_one_error(proc, 3, named)
    assert "not restored intact" in sentence
    assert fingerprint(outside) == before, "restore changed something outside --to"
    # neither of the entries fighting over a name was restored; nothing in --to is a link
    if build not in (_dot_dot, _slash_in_name):
        assert not os.path.lexists(to / named)
    else:
        assert (to / "ok.txt").read_bytes() == b"ok\n"
    assert not [p for p in to.rglob("*") if p.is_symlink()]


@pytest.mark.parametrize("planted", ["dir", "file", "dangling"])
def test_link_planted_in_to_is_replaced_not_followed(tmp_path, crafted, outside, fingerprint, drorch_env,
                                                     e2e, planted):
    """--to already holds symlinks where the snapshot has a directory and a file."""
    before = fingerprint(outside)
    snap = crafted.snapshot([crafted.dir("sub", [crafted.file("inner.txt", DATA, mode=0o777)]),
                             crafted.file("victim.txt", DATA, mode=0o777)])
    to = tmp_path / "to"
    to.mkdir()
    if planted == "dangling":
        os.symlink(outside / "absent", to / "sub")
        os.symlink(outside / "absent-too", to / "victim.txt")
    else:
        os.symlink(outside / "sub" if planted == "dir" else outside, to / "sub")
        os.symlink(outside / "victim.txt", to / "victim.txt")
    proc = e2e.run_drorch("restore", crafted.policy, snap[:12], "--to", to, "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert fingerprint(outside) == before, "restore wrote through a link planted in --to"
    assert not (outside / "absent").exists() and not (outside / "absent-too").exists()
    assert stat.S_ISDIR((to / "sub").lstat().st_mode)
    assert (to / "sub" / "inner.txt").read_bytes() == DATA
    assert stat.S_ISREG((to / "victim.txt").lstat().st_mode)
    assert (to / "victim.txt").read_bytes() == DATA


@pytest.mark.parametrize("link_mode", [0o777, 0o4755])
def test_symlink_metadata_never_lands_on_its_target(tmp_path, crafted, outside, fingerprint, drorch_env,
                                                    e2e, link_mode):
    """A symlink node's mode, owner and times are never applied through the link."""
    before = fingerprint(outside)
    link = crafted.symlink("l", str(outside / "victim.txt"), mode=link_mode)
    link.update(uid=4321, gid=4321)
    dir_link = crafted.symlink("d", str(outside / "sub"), mode=link_mode)
    snap = crafted.snapshot([link, dir_link])
    to = tmp_path / "to"
    proc = e2e.run_drorch("restore", crafted.policy, snap[:12], "--to", to, "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert fingerprint(outside) == before
    assert os.readlink(to / "l") == str(outside / "victim.txt")


def test_restore_into_a_dir_restores_the_rest_after_refusing_duplicates(tmp_path, crafted, outside,
                                                                      drorch_env, e2e, fingerprint):
    """Duplicates are named and skipped; their siblings are restored, with exit 3."""
    snap = crafted.snapshot([crafted.file("dup", b"one\n"), crafted.file("dup", b"two\n"),
                             crafted.dir("keep", [crafted.file("k.txt", b"kept\n")])])
    to = tmp_path / "to"
    doc = e2e.drorch_json("restore", crafted.policy, snap[:12], "--to", to, env=drorch_env, expect=3)
    assert [d["path"] for d in doc["damaged"]] == ["dup"]
    assert (to / "keep" / "k.txt").read_bytes() == b"kept\n"
    assert not (to / "dup").exists()


# ----------------------------------------------------------------------------- images


def _image_snapshot(crafted, tmp_path, name="disk.img"):
    data = os.urandom(200_000)
    snap = crafted.snapshot([crafted.file(name, data, mode=0o600)], path=tmp_path / "images" / name)
    return snap, data


@pytest.mark.parametrize("planted", ["disk.img", "disk.img.drorch-incomplete"])
def test_image_restore_does_not_write_through_a_link_in_to(tmp_path, crafted, outside, drorch_env, e2e,
                                                           planted, fingerprint):
    snap, _ = _image_snapshot(crafted, tmp_path)
    before = fingerprint(outside)
    to = tmp_path / "to"
    to.mkdir()
    os.symlink(outside / "victim.txt", to / planted)
    proc = e2e.run_drorch("restore", crafted.policy, snap[:12], "--to", to, "--quiet", env=drorch_env)
    e2e.assert_one_error(proc, 2, "symlink")
    assert fingerprint(outside) == before
    assert (to / planted).is_symlink()


def test_image_named_dot_dot_is_refused(tmp_path, crafted, outside, drorch_env, e2e, fingerprint):
    data = b"x" * 1000
    node = crafted.file("..", data)
    # a path ending in ".." whose last tree holds a file node named ".."
    snap = crafted.snapshot([node], path=tmp_path / "images" / "..")
    to = outside / "sub" / "to"
    to.mkdir()
    before = fingerprint(outside)
    proc = e2e.run_drorch("restore", crafted.policy, snap[:12], "--to", to, "--quiet", env=drorch_env)
    assert proc.returncode in (2, 3), e2e.describe(proc)
    assert "Traceback" not in proc.stderr
    assert fingerprint(outside) == before


def test_image_restore_onto_a_link_named_explicitly_follows_it(tmp_path, crafted, drorch_env, e2e):
    """--to naming a link is the operator's choice (``/dev/disk/by-id/...`` are links)."""
    snap, data = _image_snapshot(crafted, tmp_path)
    real = tmp_path / "real.img"
    real.write_bytes(b"old")
    os.symlink(real, tmp_path / "link.img")
    proc = e2e.run_drorch("restore", crafted.policy, snap[:12], "--to", tmp_path / "link.img",
                          "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert real.read_bytes() == data and (tmp_path / "link.img").is_symlink()
