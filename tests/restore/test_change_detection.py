"""A file is re-read when anything restic looks at changed: size, mtime, inode, and ctime, which
catches content rewritten with the mtime put back (``touch -d``); unchanged files are not re-read."""

from __future__ import annotations

import os
import subprocess

import pytest

ORIGINAL = b"the original content, 40 bytes long....\n"
EDITED = b"THE EDITED content, the same 40 bytes..\n"
assert len(ORIGINAL) == len(EDITED)


def _rewrite_in_place(path):
    with open(path, "r+b") as f:
        f.write(EDITED)


def _replace_by_rename(path):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(EDITED)
    os.replace(tmp, path)  # a new inode


def _truncate_and_write(path):
    path.write_bytes(EDITED)


EDITS = [
    pytest.param(_rewrite_in_place, "utime", id="rewrite-in-place-utime-back"),
    pytest.param(_rewrite_in_place, "touch", id="rewrite-in-place-touch-d"),
    pytest.param(_truncate_and_write, "utime", id="truncate-and-write-utime-back"),
    pytest.param(_replace_by_rename, "touch", id="rename-over-touch-d"),
]


def _put_mtime_back(path, how, mtime_ns):
    if how == "utime":
        os.utime(path, ns=(mtime_ns, mtime_ns))
    else:
        seconds, frac = divmod(mtime_ns, 1_000_000_000)
        subprocess.run(["touch", "-d", f"@{seconds}.{frac:09d}", str(path)], check=True)


@pytest.mark.parametrize("edit, how", EDITS)
def test_content_changed_with_mtime_put_back_is_reread(tmp_path, drorch_env, e2e, edit, how):
    src = tmp_path / "src"
    src.mkdir()
    path = src / "data.txt"
    path.write_bytes(ORIGINAL)
    (src / "other.txt").write_bytes(b"untouched\n")
    policy = e2e.make_policy(tmp_path, src, tmp_path / "repo")
    e2e.apply_ok(policy, drorch_env)
    before = path.stat()
    edit(path)
    _put_mtime_back(path, how, before.st_mtime_ns)
    assert path.stat().st_mtime_ns == before.st_mtime_ns and path.stat().st_size == before.st_size
    second = e2e.apply_ok(policy, drorch_env)
    assert second["files_changed"] == 1 and second["files_unmodified"] == 1, second
    to = tmp_path / "to"
    proc = e2e.run_drorch("restore", policy, "latest", "--to", to, "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert (to / "data.txt").read_bytes() == EDITED
    assert (to / "data.txt").stat().st_mtime_ns == before.st_mtime_ns


@pytest.mark.parametrize("touch", ["nothing", "chmod"])
def test_only_what_changed_is_reread(tmp_path, drorch_env, e2e, touch):
    """Nothing changed: no file re-read. A chmod changes ctime: re-read, as restic does."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}.txt").write_bytes(b"x" * (i + 1))
    policy = e2e.make_policy(tmp_path, src, tmp_path / "repo")
    e2e.apply_ok(policy, drorch_env)
    if touch == "chmod":
        os.chmod(src / "f0.txt", 0o600)
    second = e2e.apply_ok(policy, drorch_env)
    changed = 1 if touch == "chmod" else 0
    assert (second["files_changed"], second["files_unmodified"]) == (changed, 3 - changed), second


@pytest.mark.restic
def test_restic_parent_is_compared_by_instant(tmp_path, drorch_env, restic, e2e):
    """A parent snapshot written by restic spells times differently; unchanged files stay unchanged
    only if drorch compares the instants (ctime included), not the strings."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a\n")
    repo = tmp_path / "repo"
    restic.init(repo)
    restic("backup", "--tag", "drorch-mirror=m", src, repo=repo)
    policy = e2e.make_policy(tmp_path, src, repo)
    result = e2e.apply_ok(policy, drorch_env)
    assert result["files_changed"] + result["files_new"] + result["files_unmodified"] == 1
