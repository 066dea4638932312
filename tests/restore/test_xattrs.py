"""Extended attributes (user.*, security.*, trusted.*, POSIX ACLs) are recorded as restic records
them (node ``extended_attributes``: name and base64 value), restored, and understood by restic
both ways; a change to xattrs alone counts as a change."""

from __future__ import annotations

import os
import struct

import pytest

ACL_UNDEFINED = 0xFFFFFFFF


def _acl(*entries: tuple[int, int, int]) -> bytes:
    """A Linux ``system.posix_acl_*`` value: version 2, then (tag, perm, id) entries sorted by tag."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in entries)


ACCESS_ACL = _acl((0x01, 6, ACL_UNDEFINED), (0x02, 4, 1234), (0x04, 4, ACL_UNDEFINED),
                  (0x10, 4, ACL_UNDEFINED), (0x20, 0, ACL_UNDEFINED))
DEFAULT_ACL = _acl((0x01, 7, ACL_UNDEFINED), (0x04, 5, ACL_UNDEFINED), (0x08, 5, 4321),
                   (0x10, 5, ACL_UNDEFINED), (0x20, 0, ACL_UNDEFINED))
# VFS_CAP_REVISION_2 with the effective flag, CAP_NET_RAW (13) permitted
CAPABILITY = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)

ATTRS = [  # (path below the source, attribute, value, needs root)
    pytest.param("plain.txt", "user.comment", b"hello \x00\xff binary", False, id="user-on-file"),
    pytest.param("dir", "user.dir-tag", b"on a directory", False, id="user-on-dir"),
    pytest.param("plain.txt", "security.selinux", b"system_u:object_r:tmp_t:s0\x00", True,
                 id="selinux-label"),
    pytest.param("tool", "security.capability", CAPABILITY, True, id="file-capability"),
    pytest.param("acl.txt", "system.posix_acl_access", ACCESS_ACL, False, id="access-acl"),
    pytest.param("dir", "system.posix_acl_default", DEFAULT_ACL, False, id="default-acl"),
    pytest.param("link", "trusted.on-symlink", b"root only, on the link itself", True,
                 id="trusted-on-symlink"),
]


def _supports_user_xattrs(where) -> str | None:
    probe = where / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
        return None
    except OSError as err:
        return f"{where} does not support user xattrs ({err.strerror})"
    finally:
        probe.unlink()


@pytest.fixture
def xattr_source(tmp_path):
    """A source holding every attribute of ATTRS (those possible here); skips without xattrs."""
    reason = _supports_user_xattrs(tmp_path)
    if reason:
        pytest.skip(reason)
    src = tmp_path / "src"
    (src / "dir").mkdir(parents=True)
    for name in ("plain.txt", "acl.txt", "tool", "dir/inside.txt"):
        (src / name).write_bytes(f"{name}\n".encode())
    os.symlink("plain.txt", src / "link")
    return src


def _set(src, rel, name, value, needs_root):
    if needs_root and os.geteuid() != 0:
        pytest.skip(f"{name} needs root")
    try:
        os.setxattr(src / rel, name, value, follow_symlinks=False)
    except OSError as err:
        pytest.skip(f"cannot set {name} here ({err.strerror})")


def _get(path, name):
    return os.getxattr(path, name, follow_symlinks=False)


@pytest.mark.parametrize("rel, name, value, needs_root", ATTRS)
def test_xattr_survives_backup_and_restore(tmp_path, xattr_source, drorch_env, e2e, rel, name, value,
                                           needs_root):
    _set(xattr_source, rel, name, value, needs_root)
    want = _get(xattr_source / rel, name)
    policy = e2e.make_policy(tmp_path, xattr_source, tmp_path / "repo")
    e2e.apply_ok(policy, drorch_env)
    to = tmp_path / "to"
    proc = e2e.run_drorch("restore", policy, "latest", "--to", to, "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert _get(to / rel, name) == want
    assert oct((to / rel).lstat().st_mode) == oct((xattr_source / rel).lstat().st_mode)


@pytest.mark.restic
@pytest.mark.parametrize("direction", ["drorch-to-restic", "restic-to-drorch"])
def test_xattrs_interoperate_with_restic(tmp_path, xattr_source, drorch_env, restic, e2e, cross_restore,
                                         direction):
    _set(xattr_source, "plain.txt", "user.comment", b"\x00\x01 both ways", False)
    _set(xattr_source, "dir", "system.posix_acl_default", DEFAULT_ACL, False)
    _set(xattr_source, "acl.txt", "system.posix_acl_access", ACCESS_ACL, False)
    policy = e2e.make_policy(tmp_path, xattr_source, tmp_path / "repo")
    to = cross_restore(direction, xattr_source, policy, tmp_path / "repo", tmp_path, restic, drorch_env,
                       e2e)
    for rel, name in [("plain.txt", "user.comment"), ("dir", "system.posix_acl_default"),
                      ("acl.txt", "system.posix_acl_access")]:
        assert _get(to / rel, name) == _get(xattr_source / rel, name), f"{rel} {name}"


@pytest.mark.parametrize("change", ["set", "modify", "remove"])
def test_an_xattr_change_alone_is_a_change(tmp_path, xattr_source, drorch_env, e2e, change):
    path = xattr_source / "plain.txt"
    if change != "set":
        os.setxattr(path, "user.state", b"before")
    policy = e2e.make_policy(tmp_path, xattr_source, tmp_path / "repo")
    first = e2e.apply_ok(policy, drorch_env)
    stamp = path.stat().st_mtime_ns
    if change == "remove":
        os.removexattr(path, "user.state")
    else:
        os.setxattr(path, "user.state", b"after")
    os.utime(path, ns=(stamp, stamp))
    second = e2e.apply_ok(policy, drorch_env)
    assert second["files_changed"] == 1, second
    assert second["snapshot"] != first["snapshot"]
    to = tmp_path / "to"
    proc = e2e.run_drorch("restore", policy, "latest", "--to", to, "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    got = dict((n, _get(to / "plain.txt", n)) for n in os.listxattr(to / "plain.txt"))
    assert got.get("user.state") == (None if change == "remove" else b"after")


@pytest.fixture
def no_xattr_disk(mount_fs):
    """A ramfs, which supports no extended attributes at all."""
    with mount_fs("ramfs", "mode=0755") as mount_point:
        yield mount_point


def test_restore_where_xattrs_cannot_be_set_warns_and_restores(tmp_path, xattr_source, drorch_env, e2e,
                                                               no_xattr_disk):
    """The data still comes back, each attribute not set is named in a warning, exit 0."""
    _set(xattr_source, "plain.txt", "user.comment", b"x", False)
    policy = e2e.make_policy(tmp_path, xattr_source, tmp_path / "repo")
    e2e.apply_ok(policy, drorch_env)
    to = no_xattr_disk / "to"
    proc = e2e.run_drorch("restore", policy, "latest", "--to", to, "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert (to / "plain.txt").read_bytes() == b"plain.txt\n"
    [warning] = [line for line in proc.stderr.splitlines() if line.strip()]
    assert warning.startswith("warning:") and "plain.txt" in warning and "user.comment" in warning
    assert "Traceback" not in proc.stderr
