"""Hard links come back as hard links, fifos and device nodes as themselves, as restic does it:
files sharing ``inode`` and ``device_id`` (``links`` > 1) in a snapshot are linked on restore;
fifos are ``mkfifo``-ed, ``dev`` and ``chardev`` nodes ``mknod``-ed from their ``device``."""

from __future__ import annotations

import os
import stat

import pytest

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="device nodes can only be made as root")


def _special_source(root):
    """Three links to one file (one in a subdirectory), a pair, a loner, a fifo, devices."""
    (root / "sub").mkdir(parents=True)
    (root / "trio-a").write_bytes(b"one inode, three names\n")
    os.link(root / "trio-a", root / "trio-b")
    os.link(root / "trio-a", root / "sub" / "trio-c")
    (root / "pair-1").write_bytes(os.urandom(300_000))
    os.link(root / "pair-1", root / "pair-2")
    (root / "alone").write_bytes(b"alone\n")
    os.mkfifo(root / "pipe", 0o640)
    if os.geteuid() == 0:
        os.mknod(root / "null-like", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(root / "loop-like", 0o660 | stat.S_IFBLK, os.makedev(7, 250))
        os.chown(root / "loop-like", 0, 6)
    return root


def _inode_groups(root):
    """Names grouped by inode, for regular files."""
    groups: dict[int, set[str]] = {}
    for path in root.rglob("*"):
        st = path.lstat()
        if stat.S_ISREG(st.st_mode):
            groups.setdefault(st.st_ino, set()).add(str(path.relative_to(root)))
    return sorted(sorted(g) for g in groups.values())


def _specials(root):
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            out[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode), oct(stat.S_IMODE(st.st_mode)),
                                                st.st_rdev, st.st_uid, st.st_gid, st.st_mtime_ns)
    return out


@pytest.fixture
def special(tmp_path, drorch_env, e2e):
    src = _special_source(tmp_path / "src")
    e2e.stamp_mtimes(src)
    policy = e2e.make_policy(tmp_path, src, tmp_path / "repo")
    e2e.apply_ok(policy, drorch_env)
    return src, policy


def _restore(policy, to, env, e2e, *extra):
    proc = e2e.run_drorch("restore", policy, "latest", "--to", to, "--quiet", *extra, env=env)
    assert proc.returncode == 0, e2e.describe(proc)


def test_hardlinks_are_restored_as_hardlinks(tmp_path, special, drorch_env, e2e):
    src, policy = special
    to = tmp_path / "to"
    doc = e2e.drorch_json("restore", policy, "latest", "--to", to, env=drorch_env)
    assert _inode_groups(to) == _inode_groups(src) == [["alone"], ["pair-1", "pair-2"],
                                                      ["sub/trio-c", "trio-a", "trio-b"]]
    assert (to / "trio-b").stat().st_nlink == 3
    assert doc["hardlinks"] == 3 and doc["files"] == 6
    e2e.assert_same_tree(src, to)


def test_include_of_one_link_restores_a_plain_file(tmp_path, special, drorch_env, e2e):
    src, policy = special
    to = tmp_path / "to"
    _restore(policy, to, drorch_env, e2e, "--include", "trio-b")
    assert (to / "trio-b").read_bytes() == (src / "trio-b").read_bytes()
    assert (to / "trio-b").stat().st_nlink == 1 and not (to / "trio-a").exists()


def test_restore_over_an_old_copy_does_not_write_into_other_links(tmp_path, special, drorch_env, e2e):
    """An existing file in --to that is hard-linked elsewhere is replaced, not written into."""
    src, policy = special
    to = tmp_path / "to"
    to.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"keep me\n")
    os.link(elsewhere, to / "alone")
    _restore(policy, to, drorch_env, e2e)
    assert elsewhere.read_bytes() == b"keep me\n"
    assert (to / "alone").read_bytes() == b"alone\n"


@pytest.mark.parametrize("name", ["pipe", pytest.param("null-like", marks=as_root),
                                  pytest.param("loop-like", marks=as_root)])
def test_fifos_and_device_nodes_are_restored(tmp_path, special, drorch_env, e2e, name):
    src, policy = special
    to = tmp_path / "to"
    _restore(policy, to, drorch_env, e2e)
    assert _specials(to)[name] == _specials(src)[name]


@pytest.mark.restic
@pytest.mark.parametrize("direction", ["drorch-to-restic", "restic-to-drorch"])
def test_special_files_interoperate_with_restic(tmp_path, drorch_env, restic, e2e, cross_restore,
                                                direction):
    src = _special_source(tmp_path / "src")
    e2e.stamp_mtimes(src)
    policy = e2e.make_policy(tmp_path, src, tmp_path / "repo")
    to = cross_restore(direction, src, policy, tmp_path / "repo", tmp_path, restic, drorch_env, e2e)
    assert _inode_groups(to) == _inode_groups(src)
    assert _specials(to) == _specials(src)
