"""The CLI under hostile input and faults (issue 16), driven as an operator drives it.

Secrets: ``env:${VAR}`` never prints the password; hooks never see the key.
Files: repository, ``$DRORCH_HOME`` and ``state.db`` are private under umask 000;
a damaged ``state.db`` is set aside and the backup still runs; ``$DRORCH_HOME``
being a file is one sentence. Signals: SIGTERM during retention releases the
lock. Output: ``validate --json`` prints its errors (``plan`` naming a missing
bucket is in test_cloud_errors.py). A repository inside its source is excluded and said so. The cron
export locks in ``$DRORCH_HOME`` and names the policy's variable.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _no_key_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != "DRORCH_KEY"}


# ----------------------------------------------------------------------------- hostile input via the CLI


@pytest.mark.parametrize("case", ["/dev/zero", "alias bomb", "nested brackets", "never-firing cron",
                                  "overflowing rpo", "NUL in the source path"])
def test_hostile_policy_is_exit_2_and_one_sentence(case, tmp_path, dataset, drorch_env, e2e):
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo")
    text = policy.read_text()
    if case == "/dev/zero":
        policy = Path("/dev/zero")
    elif case == "alias bomb":
        bomb = ["b0: &a0 [" + ",".join(["x"] * 10) + "]"]
        bomb += [f"b{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
        policy.write_text(text + "\n".join(bomb) + "\n")
    elif case == "nested brackets":
        policy.write_text(text + "deep: " + "[" * 20_000 + "]" * 20_000 + "\n")
    elif case == "never-firing cron":
        policy.write_text(text.replace("rpo: 1h", "rpo: 1h\n  schedule: 0 0 31 2 *"))
    elif case == "overflowing rpo":
        policy.write_text(text.replace("rpo: 1h", "rpo: 99999999999999999999w"))
    else:
        policy.write_text(text.replace(f"path: {dataset}", f'path: "{dataset}\\0x"'))
    for command in ("validate", "plan"):
        proc = e2e.run_drorch(command, policy, env=drorch_env, timeout=60)
        e2e.assert_one_error(proc, 2)


def test_validate_json_prints_the_errors(tmp_path, dataset, drorch_env, e2e):
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo", rpo="15x")
    doc = e2e.drorch_json("validate", policy, env=drorch_env, expect=2)
    assert doc["valid"] is False
    [error] = doc["errors"]
    assert error["path"] == "mirrors[0].rpo" and error["line"] and "invalid duration" in error["message"]
    doc = e2e.drorch_json("validate", tmp_path / "missing.yaml", env=drorch_env, expect=2)
    assert doc["valid"] is False and "no such file" in doc["errors"][0]["message"]


@pytest.mark.parametrize("command", ["validate", "plan", "apply", "snapshots"])
def test_env_key_with_braces_never_prints_the_password(command, tmp_path, dataset, drorch_env,
                                                       drorch_key, e2e):
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo", key="env:${REPO_PASSWORD}")
    env = _no_key_env(drorch_env) | {"REPO_PASSWORD": drorch_key}
    proc = e2e.run_drorch(command, policy, env=env)
    e2e.assert_one_error(proc, 2, "never expanded", secret=drorch_key)


# ----------------------------------------------------------------------------- hooks and the key


def test_hooks_never_see_the_repository_key(tmp_path, dataset, drorch_env, drorch_key, e2e):
    dump = tmp_path / "pre.env"
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo", key="env:MY_REPO_KEY", consistency={
        "pre": ["sh", "-c", f"env > {dump}"],
        "post": ["sh", "-c", "env; exit 7"],  # a failing hook that prints its environment
        "env": {"PGHOST": "db1"}})
    env = drorch_env | {"MY_REPO_KEY": drorch_key, "RESTIC_PASSWORD": drorch_key}
    proc = e2e.run_drorch("apply", policy, "--yes", "--quiet", env=env)
    assert proc.returncode == 1, e2e.describe(proc)
    seen = dump.read_text()
    assert drorch_key not in seen and "MY_REPO_KEY" not in seen and "RESTIC_PASSWORD" not in seen
    assert "DRORCH_MIRROR=m" in seen and "PGHOST=db1" in seen and "PATH=" in seen
    assert drorch_key not in proc.stdout + proc.stderr
    state = (Path(env["DRORCH_HOME"]) / "state.db").read_bytes()
    assert drorch_key.encode() not in state


# ----------------------------------------------------------------------------- files and permissions


def test_private_whatever_the_umask(tmp_path, dataset, drorch_env, e2e):
    home = tmp_path / "new" / "home"
    env = drorch_env | {"DRORCH_HOME": str(home)}
    repo = tmp_path / "fresh" / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo)
    proc = subprocess.run([*e2e.drorch_argv(), "apply", str(policy), "--quiet"], env=env,
                          capture_output=True, text=True, timeout=180, preexec_fn=lambda: os.umask(0))
    assert proc.returncode == 0, e2e.describe(proc)
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [repo, *repo.rglob("*"), home, *home.rglob("*")]}
    wrong = {str(p): oct(m) for p, m in modes.items()
             if m != (0o700 if p.is_dir() else 0o600)}
    assert not wrong, wrong
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o700  # created for the repository


@pytest.mark.parametrize("damage", ["garbage", "zero bytes", "truncated"])
def test_damaged_state_db_is_set_aside_and_the_backup_runs(damage, tmp_path, dataset, drorch_env, e2e):
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo")
    e2e.apply_ok(policy, drorch_env)
    db = Path(drorch_env["DRORCH_HOME"]) / "state.db"
    if damage == "garbage":
        db.write_bytes(os.urandom(8192))
    elif damage == "zero bytes":
        db.write_bytes(b"")
    else:
        db.write_bytes(db.read_bytes()[:1000])
    proc = e2e.run_drorch("apply", policy, "--yes", "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    if damage != "zero bytes":  # an empty file is a valid empty database
        assert "is damaged" in proc.stderr and "started a new one" in proc.stderr
        assert list(db.parent.glob("state.db.broken-*"))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchone()[0] >= 1


def test_drorch_home_is_a_file(tmp_path, dataset, drorch_env, e2e):
    home = tmp_path / "home-file"
    home.write_text("not a directory\n")
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo")
    commands = (["apply", policy, "--quiet"], ["schedule", policy], ["schedule", policy, "--export", "cron"])
    for args in commands:
        proc = e2e.run_drorch(*args, env=drorch_env | {"DRORCH_HOME": str(home)})
        e2e.assert_one_error(proc, 2, "is a file, not a directory")


# ----------------------------------------------------------------------------- signals

SLOW_RETENTION = """\
import sys, time
from pathlib import Path
import drorch.engine.apply as apply
MARKER = Path(sys.argv.pop(1))
real_forget = apply.forget
def slow_forget(*args, **kwargs):
    MARKER.write_text("retention started")
    time.sleep(60)
    return real_forget(*args, **kwargs)
apply.forget = slow_forget
from drorch.cli.app import main
main()
"""


def test_sigterm_during_retention_releases_the_lock(tmp_path, dataset, drorch_env, e2e, restic):
    """The delay only widens the window; the lock is the real one, released by unwinding."""
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo, retention={"last": 1})
    e2e.apply_ok(policy, drorch_env)
    marker = tmp_path / "in-retention"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RETENTION, str(marker), "apply", str(policy),
                             "--yes", "--quiet"], env=drorch_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        assert list((repo / "locks").iterdir()), "the apply holds no lock"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "terminated" in stderr and "Traceback" not in stderr
    assert not list((repo / "locks").iterdir()), "SIGTERM left the lock file behind"
    restic.check(repo, read_data=False)
    e2e.apply_ok(policy, drorch_env)  # not "busy"


# ----------------------------------------------------------------------------- target inside the source


def test_repository_inside_its_source_is_excluded_and_said(tmp_path, dataset, drorch_env, e2e, restic):
    repo = dataset / "nested" / "backups [x]" / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo)
    plan = e2e.run_drorch("plan", policy, env=drorch_env)
    assert plan.returncode == 0 and "inside source" in plan.stdout, e2e.describe(plan)
    for _ in range(2):
        proc = e2e.run_drorch("apply", policy, "--yes", "--quiet", env=drorch_env)
        assert proc.returncode == 0 and "excluded from the snapshot" in proc.stdout, e2e.describe(proc)
    out = tmp_path / "out"
    e2e.run_drorch("restore", policy, "latest", "--to", out, "--quiet", env=drorch_env)
    kept = out / "nested" / "backups [x]"
    assert kept.is_dir() and not (kept / "repo").exists()
    assert (out / "nested" / "a" / "b" / "c" / "deep.txt").is_file()
    restic.check(repo)


def test_repository_that_is_the_source_is_refused(tmp_path, dataset, drorch_env, e2e):
    policy = e2e.make_policy(tmp_path, dataset, dataset)
    proc = e2e.run_drorch("apply", policy, "--yes", "--quiet", env=drorch_env)
    assert proc.returncode == 1 and "keep repository and source apart" in proc.stderr, e2e.describe(proc)
    assert not (dataset / "config").exists()


# ----------------------------------------------------------------------------- schedule export


def test_cron_export_locks_privately_and_names_the_variable(tmp_path, dataset, drorch_env, e2e):
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo", key="env:SHOP_REPO_KEY",
                             schedule="*/15 * * * *")
    proc = e2e.run_drorch("schedule", policy, "--export", "cron", env=_no_key_env(drorch_env))
    assert proc.returncode == 0, e2e.describe(proc)
    home = Path(drorch_env["DRORCH_HOME"])
    drorch_bin = str(Path(sys.executable).parent)  # the venv, wherever the checkout lives
    assert "/tmp/" not in proc.stdout.replace(str(tmp_path), "").replace(drorch_bin, "")
    assert "SHOP_REPO_KEY" in proc.stdout and "DRORCH_KEY" not in proc.stdout
    assert f"DRORCH_HOME={home}" in proc.stdout
    assert f"flock -n {home}/cron-locks/" in proc.stdout
    assert stat.S_IMODE((home / "cron-locks").stat().st_mode) == 0o700
    units = e2e.run_drorch("schedule", policy, "--export", "systemd", env=_no_key_env(drorch_env))
    assert "SHOP_REPO_KEY=" in units.stdout and "DRORCH_KEY" not in units.stdout
