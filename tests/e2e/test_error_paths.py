"""SPEC §3: errors are one clear sentence on stderr with the right exit code; never a traceback,
never the repository key."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest


@pytest.fixture
def applied(tmp_path, dataset, drorch_env, e2e):
    """A policy whose repository exists and holds one snapshot."""
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo")
    e2e.apply_ok(policy, drorch_env)
    return policy


def _snapshots_on_disk(repo: Path) -> list[str]:
    folder = repo / "snapshots"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# ----------------------------------------------------------------------------- the key


@pytest.mark.parametrize("command", ["snapshots", "apply", "verify", "restore"])
def test_wrong_password(tmp_path, applied, drorch_env, drorch_key, e2e, command):
    env = dict(drorch_env, DRORCH_KEY="pw-wrong-" + drorch_key[::-1])
    args = {"snapshots": ["snapshots", applied],
            "apply": ["apply", applied, "--quiet"],
            "verify": ["verify", applied, "--quiet"],
            "restore": ["restore", applied, "latest", "--to", tmp_path / "out", "--quiet"]}
    proc = e2e.run_drorch(*args[command], env=env)
    sentence = e2e.assert_one_error(proc, 1, "key", "local", secret=drorch_key)
    assert env["DRORCH_KEY"] not in proc.stdout + proc.stderr
    assert "password" in sentence.lower() or "does not open" in sentence.lower()
    if command == "apply":
        assert len(_snapshots_on_disk(tmp_path / "repo")) == 1


@pytest.mark.parametrize("command", ["snapshots", "apply"])
def test_key_variable_unset(tmp_path, applied, drorch_env, drorch_key, e2e, command):
    env = {k: v for k, v in drorch_env.items() if k != "DRORCH_KEY"}
    extra = ["--quiet"] if command == "apply" else []
    proc = e2e.run_drorch(command, applied, *extra, env=env)
    e2e.assert_one_error(proc, 1, "DRORCH_KEY", secret=drorch_key)


def test_key_from_file_is_never_echoed(tmp_path, dataset, drorch_env, drorch_key, e2e):
    key_file = tmp_path / "repo.key"
    key_file.write_text(drorch_key + "\n")
    key_file.chmod(0o600)
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo", key=f"file:{key_file}")
    env = {k: v for k, v in drorch_env.items() if k != "DRORCH_KEY"}
    proc = e2e.run_drorch("apply", policy, "--json", env=env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert drorch_key not in proc.stdout + proc.stderr
    key_file.write_text("pw-another-" + drorch_key[::-1])
    proc = e2e.run_drorch("snapshots", policy, env=env)
    e2e.assert_one_error(proc, 1, "local", secret=drorch_key)
    assert "pw-another-" not in proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- repository


@pytest.mark.parametrize("command", ["snapshots", "restore", "verify"])
def test_missing_repository(tmp_path, dataset, drorch_env, drorch_key, e2e, command):
    repo = tmp_path / "no-repo-here"
    policy = e2e.make_policy(tmp_path, dataset, repo)
    args = {"snapshots": [], "restore": ["latest", "--to", tmp_path / "out", "--quiet"],
            "verify": ["--quiet"]}[command]
    proc = e2e.run_drorch(command, policy, *args, env=drorch_env)
    e2e.assert_one_error(proc, 1, "'local'", str(repo), secret=drorch_key)
    assert not repo.exists(), f"`drorch {command}` created a repository"


# ----------------------------------------------------------------------------- source


def test_source_path_missing(tmp_path, drorch_env, drorch_key, e2e):
    missing = tmp_path / "not-there"
    policy = e2e.make_policy(tmp_path, missing, tmp_path / "repo")
    proc = e2e.run_drorch("apply", policy, "--quiet", env=drorch_env)
    e2e.assert_one_error(proc, 1, str(missing), secret=drorch_key)
    assert _snapshots_on_disk(tmp_path / "repo") == []


def test_source_path_missing_json(tmp_path, drorch_env, drorch_key, e2e):
    missing = tmp_path / "not-there"
    policy = e2e.make_policy(tmp_path, missing, tmp_path / "repo")
    doc = e2e.drorch_json("apply", policy, env=drorch_env, expect=1)
    assert doc["exit_code"] == 1
    assert str(missing) in str(doc["mirrors"])


def _without_dac_override() -> list[str] | None:
    """argv prefix dropping root's power to read anything, or None when not possible."""
    if os.geteuid() != 0:
        return []
    setpriv = "/usr/bin/setpriv"
    if not os.path.exists(setpriv):
        return None
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


def test_unreadable_entries_are_skipped_and_listed(tmp_path, dataset, drorch_env, drorch_key,
                                                   e2e):
    """Exit 3 (objectives missed), every unreadable path named, the rest still protected."""
    prefix = _without_dac_override()
    if prefix is None:
        pytest.skip("running as root without setpriv: root reads mode-000 files anyway")
    locked_dir = dataset / "locked-dir"
    locked_dir.mkdir()
    (locked_dir / "hidden.txt").write_text("cannot be listed\n")
    locked_file = dataset / "locked-file.bin"
    locked_file.write_bytes(b"cannot be read\n")
    locked_dir.chmod(0o000)
    locked_file.chmod(0o000)
    try:
        policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo")
        argv = [*prefix, *e2e.drorch_argv(), "apply", policy, "--quiet"]
        proc = subprocess.run(list(map(str, argv)), env=drorch_env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 3, e2e.describe(proc)
        assert "Traceback" not in proc.stdout + proc.stderr
        assert drorch_key not in proc.stdout + proc.stderr
        shown = proc.stdout + proc.stderr
        assert str(locked_file) in shown, e2e.describe(proc)
        assert str(locked_dir) in shown, e2e.describe(proc)

        doc = e2e.drorch_json("snapshots", policy, env=drorch_env)
        assert len(doc["local"]) == 1, "the readable part should still make a snapshot"
    finally:
        locked_dir.chmod(0o755)
        locked_file.chmod(0o644)
    out = tmp_path / "out"
    proc = e2e.run_drorch("restore", policy, "latest", "--to", out, "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert (out / "big.bin").read_bytes() == (dataset / "big.bin").read_bytes()
    assert not (out / "locked-file.bin").exists()


# ----------------------------------------------------------------------------- full disk


@pytest.fixture
def tiny_disk(mount_fs):
    """A 2 MiB tmpfs; skips when mounting is not permitted here."""
    with mount_fs("tmpfs", "size=2m") as mount_point:
        yield mount_point


def test_full_disk(tmp_path, drorch_env, drorch_key, e2e, tiny_disk):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}.bin").write_bytes(e2e.random_bytes(2 * e2e.MiB, f"full-{i}"))
    repo = tiny_disk / "repo"
    policy = e2e.make_policy(tmp_path, src, repo)
    proc = e2e.run_drorch("apply", policy, "--quiet", env=drorch_env)
    sentence = e2e.assert_one_error(proc, 1, "no space left", secret=drorch_key)
    assert "local" in sentence or str(repo) in sentence

    # nothing half-written is visible: no snapshot, only whole packs, no lock; an index may
    # list the packs that made it (so the next run reuses them) but never a missing one
    assert _snapshots_on_disk(repo) == []
    packs = {p.name for p in e2e.pack_files(repo)}
    for pack in e2e.pack_files(repo):
        assert hashlib.sha256(pack.read_bytes()).hexdigest() == pack.name, f"partial {pack}"
    if (repo / "index").exists() and list((repo / "index").glob("*")):
        from drorch.providers.local import LocalStore
        from drorch.repository.repository import Repository

        indexed = Repository.open(LocalStore(repo), drorch_key.encode(), "local")
        indexed.load_index()
        assert set(indexed.index.packs()) <= packs
    assert not list((repo / "locks").glob("*")) if (repo / "locks").exists() else True
    assert not list((repo / "tmp").glob("*")) if (repo / "tmp").exists() else True
    listing = e2e.run_drorch("snapshots", policy, "--json", env=drorch_env)
    if listing.returncode == 0:  # the repository was created before the disk filled
        assert json.loads(listing.stdout) == {"local": []}


# ----------------------------------------------------------------------------- policy


@pytest.mark.parametrize("text, where", [
    ("apiVersion: drorch/v1\nkind: [\n", "policy.yaml"),
    ("apiVersion: drorch/v1\nkind: MirrorPolicy\nmetadata: {name: x}\n"
     "encryption: {key: env:DRORCH_KEY}\nsources: []\ntargets: []\n"
     "mirrors:\n  - {name: m, source: nope, targets: [local], rpo: 1h}\n", "nope"),
    ("just a string\n", "policy.yaml"),
])
@pytest.mark.parametrize("command", ["validate", "apply", "snapshots"])
def test_malformed_policy(tmp_path, drorch_env, drorch_key, e2e, text, where, command):
    policy = tmp_path / "policy.yaml"
    policy.write_text(text)
    proc = e2e.run_drorch(command, policy, env=drorch_env)
    assert proc.returncode == 2, e2e.describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, e2e.describe(proc)
    assert "internal error" not in proc.stderr.lower(), e2e.describe(proc)
    assert where in proc.stderr, e2e.describe(proc)
    assert drorch_key not in proc.stdout + proc.stderr


def test_policy_file_missing(tmp_path, drorch_env, e2e):
    proc = e2e.run_drorch("apply", tmp_path / "absent.yaml", env=drorch_env)
    assert proc.returncode == 2, e2e.describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "absent.yaml" in proc.stderr


def test_inline_secret_is_refused_without_echo(tmp_path, dataset, drorch_env, e2e):
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo", key="hunter2-inline-secret")
    proc = e2e.run_drorch("apply", policy, env=drorch_env)
    assert proc.returncode == 2, e2e.describe(proc)
    assert "hunter2-inline-secret" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_debug_shows_the_traceback(tmp_path, dataset, drorch_env, e2e):
    repo = tmp_path / "no-repo-here"
    policy = e2e.make_policy(tmp_path, dataset, repo)
    proc = e2e.run_drorch("--debug", "snapshots", policy, env=drorch_env)
    assert proc.returncode == 1, e2e.describe(proc)
    assert "Traceback" in proc.stderr or "RepositoryNotFound" in proc.stderr
