"""Issue 16, interoperability: odd names, odd timestamps, deep trees and relative paths, in both
directions through the stock restic binary (the oracle)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from drorch.repository.timefmt import clamp_year_ns, parse_ns

pytestmark = pytest.mark.restic

ODD_NAMES = ['say "hi"', "back\\slash", "new\nline", "tab\there", os.fsdecode(b"latin1-\xe9"),
             os.fsdecode(b"\xff\xfe"), "caf\u00e9", "zero\u200bwidth", "plain.txt"]
ODD_MTIMES = {"year-10000": 253402300800, "year-36812": 1099511627776, "minus-one": -1,
              "year-1900": -2208988800}


@pytest.fixture
def shm() -> Iterator[Path]:
    """A tmpfs directory: it keeps 64-bit file times (ext4 stops at 2446)."""
    path = Path(tempfile.mkdtemp(prefix="drorch-odd-", dir="/dev/shm"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def deep_tmp(tmp_path: Path) -> Iterator[Path]:
    """tmp_path for trees deeper than shutil.rmtree (recursive) can remove: `rm -rf` does."""
    import subprocess

    yield tmp_path
    subprocess.run(["rm", "-rf", str(tmp_path)], check=False)


def _odd_names(root: Path) -> Path:
    root.mkdir()
    for i, name in enumerate(ODD_NAMES):
        (root / name).write_text(f"file {i}\n")
        (root / f"{name}.d").mkdir()
        (root / f"{name}.d" / name).write_text(f"nested {i}\n")
    return root


def _odd_times(root: Path) -> Path:
    root.mkdir()
    for label, seconds in ODD_MTIMES.items():
        path = root / f"{label}.txt"
        path.write_text(label)
        os.utime(path, ns=(seconds * 10**9, seconds * 10**9))
    return root


def _deep(root: Path, depth: int) -> Path:
    path = root
    path.mkdir()
    for _ in range(depth):
        path = path / "d"
        os.mkdir(path)  # pathlib's mkdir(parents=True) itself recurses
    (path / "bottom.txt").write_text(f"{depth} levels down\n")
    return root


def _walk(root: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(relative path, entry) of everything below ``root``; iterative (os.walk recurses in 3.11)."""
    pending = [(root, "")]
    while pending:
        folder, rel = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                path = f"{rel}/{entry.name}" if rel else entry.name
                yield path, entry
                if entry.is_dir(follow_symlinks=False):
                    pending.append((Path(entry.path), path))


def _names(root: Path) -> set[str]:
    return {path for path, _ in _walk(root)}


def _contents(root: Path) -> dict[str, bytes]:
    return {path: Path(entry.path).read_bytes() for path, entry in _walk(root)
            if entry.is_file(follow_symlinks=False)}


def _mtimes(root: Path) -> dict[str, int]:
    return {p.name: p.lstat().st_mtime_ns for p in root.iterdir()}


# ----------------------------------------------------------------------------- names


def test_odd_names_written_by_drorch_pass_restic_check_and_restore(tmp_path, drorch_env, restic, e2e):
    src = _odd_names(tmp_path / "src")
    repo = tmp_path / "repo"
    e2e.apply_ok(e2e.make_policy(tmp_path, src, repo), drorch_env)
    restic.check(repo, read_data=True)
    out = tmp_path / "restic-out"
    restic("restore", "latest", "--target", out, repo=repo)
    restored = e2e.restic_restored_root(out, src)
    assert _names(restored) == _names(src)
    assert _contents(restored) == _contents(src)


def test_odd_names_written_by_restic_come_back_under_their_names(tmp_path, drorch_env, restic, e2e):
    src = _odd_names(tmp_path / "src")
    repo = tmp_path / "restic-repo"
    restic.init(repo)
    restic("backup", src, repo=repo)
    out = tmp_path / "out"
    proc = e2e.run_drorch("restore", e2e.make_policy(tmp_path, src, repo), "latest", "--to", out,
                          "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert _names(out) == _names(src)
    assert _contents(out) == _contents(src)
    verify = e2e.run_drorch("verify", e2e.make_policy(tmp_path, src, repo), env=drorch_env)
    assert verify.returncode == 0, e2e.describe(verify)


# ----------------------------------------------------------------------------- timestamps


def test_odd_mtimes_are_saved_as_restic_saves_them_and_restored(tmp_path, shm, drorch_env, restic, e2e):
    src = _odd_times(shm / "src")
    ours, theirs = tmp_path / "repo", tmp_path / "restic-repo"
    policy = e2e.make_policy(tmp_path, src, ours)
    result = e2e.apply_ok(policy, drorch_env)
    assert not result.get("skipped"), result
    restic.check(ours, read_data=True)
    restic.init(theirs)
    restic("backup", src, repo=theirs)

    expected = {f"{label}.txt": clamp_year_ns(s * 10**9) for label, s in ODD_MTIMES.items()}
    for repo in (ours, theirs):
        listed = restic("ls", "--json", "latest", repo=repo).stdout.splitlines()
        nodes = [json.loads(line) for line in listed if '"struct_type":"node"' in line]
        mtimes = {n["name"]: parse_ns(n["mtime"]) for n in nodes if n["name"].endswith(".txt")}
        assert mtimes == expected, f"{repo.name}: {mtimes}"

    by_restic = shm / "restic-out"
    restic("restore", "latest", "--target", by_restic, repo=ours)
    # restic 0.14 restores times through int64 nanoseconds, which overflow after 2262: it is
    # the oracle of what is stored, and of restored times it can represent.
    representable = {k: v for k, v in expected.items() if v < 2**63}
    restored = _mtimes(e2e.restic_restored_root(by_restic, src))
    assert {k: restored[k] for k in representable} == representable
    for repo in (ours, theirs):
        out = shm / f"drorch-out-{repo.name}"
        proc = e2e.run_drorch("restore", e2e.make_policy(tmp_path, src, repo), "latest", "--to", out,
                              "--quiet", env=drorch_env)
        assert proc.returncode == 0, e2e.describe(proc)
        assert _mtimes(out) == expected


# ----------------------------------------------------------------------------- depth


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("depth", [260, 600])
def test_a_deep_source_backs_up_and_restores(deep_tmp, drorch_env, restic, e2e, depth):
    tmp_path = deep_tmp
    src = _deep(tmp_path / "src", depth)
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, src, repo)
    proc = e2e.run_drorch("apply", policy, "--yes", "--quiet", env=drorch_env, timeout=300)
    assert proc.returncode == 0, e2e.describe(proc)
    assert "RecursionError" not in proc.stderr and "Traceback" not in proc.stderr
    restic.check(repo, read_data=True)
    out = tmp_path / "out"
    proc = e2e.run_drorch("restore", policy, "latest", "--to", out, "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert _contents(out) == _contents(src)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_restic_repository_1100_deep_restores_and_verifies(deep_tmp, drorch_env, restic, e2e):
    tmp_path = deep_tmp
    src = _deep(tmp_path / "src", 1100)
    repo = tmp_path / "restic-repo"
    restic.init(repo)
    restic("backup", src, repo=repo)
    restic.check(repo, read_data=False)
    policy = e2e.make_policy(tmp_path, src, repo)
    out = tmp_path / "out"
    proc = e2e.run_drorch("restore", policy, "latest", "--to", out, "--quiet", env=drorch_env, timeout=300)
    assert proc.returncode == 0, e2e.describe(proc)
    assert _contents(out) == _contents(src)
    proc = e2e.run_drorch("verify", policy, "--read-data", "--quiet", env=drorch_env, timeout=300)
    assert proc.returncode == 0, e2e.describe(proc)


# ----------------------------------------------------------------------------- relative paths


@pytest.mark.parametrize("relative", ["data", "./data", "data/inner"])
def test_a_restic_snapshot_of_a_relative_path_restores(tmp_path, drorch_env, restic, e2e, relative):
    work = tmp_path / "work"
    (work / "data" / "inner").mkdir(parents=True)
    (work / "data" / "top.txt").write_text("top\n")
    (work / "data" / "inner" / "deep.txt").write_text("deep\n")
    repo = tmp_path / "restic-repo"
    restic.init(repo)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
    env["RESTIC_PASSWORD"] = restic.password
    import subprocess

    subprocess.run([restic.binary, "--no-cache", "-r", str(repo), "backup", relative], cwd=work, env=env,
                   check=True, capture_output=True)
    source = (work / relative).resolve()
    out = tmp_path / "out"
    proc = e2e.run_drorch("restore", e2e.make_policy(tmp_path, source, repo), "latest", "--to", out,
                          "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert _contents(out) == _contents(source)
