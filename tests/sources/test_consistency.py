"""pre/post hooks and ``snapshot: command``: order, failures, timeouts, SIGTERM; post always runs."""

from __future__ import annotations

import filecmp
import signal
import sys
import time
from pathlib import Path

MiB = 1024 * 1024


def _hook(log: Path, word: str, extra: str = "") -> list[str]:
    """A hook that appends ``word`` and its environment's key facts to ``log``."""
    return ["sh", "-c", f'echo "{word} $DRORCH_MIRROR $DRORCH_SNAPSHOT $DRORCH_RESULT" >> {log}; {extra}']


def _log(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def _no_snapshots(e2e, policy: Path, env: dict[str, str]) -> bool:
    listing = e2e.drorch_json("snapshots", policy, env=env, expect=(0, 1))
    return not listing or not listing.get("local")


def test_hooks_run_around_a_directory_read(tmp_path, src, dataset, drorch_env, e2e):
    log = tmp_path / "hooks.log"
    policy = src.policy(tmp_path, dataset, tmp_path / "repo", type="directory",
                        consistency={"pre": _hook(log, "pre"), "post": _hook(log, "post")})
    e2e.apply_ok(policy, drorch_env)
    assert _log(log) == ["pre vm none ", "post vm none ok"]


def test_failed_pre_records_nothing_and_post_still_runs(tmp_path, src, dataset, drorch_env, e2e):
    log = tmp_path / "hooks.log"
    pre = _hook(log, "pre", "echo 'database is locked' >&2; exit 3")
    policy = src.policy(tmp_path, dataset, tmp_path / "repo", type="directory",
                        consistency={"pre": pre, "post": _hook(log, "post")})
    proc = e2e.run_drorch("apply", policy, "--yes", env=drorch_env)
    assert proc.returncode == 1, e2e.describe(proc)
    assert "pre hook `sh` failed with exit code 3" in proc.stdout + proc.stderr
    assert "database is locked" in proc.stdout + proc.stderr, "hook output not shown"
    assert _log(log) == ["pre vm none ", "post vm none failed"]
    assert _no_snapshots(e2e, policy, drorch_env)


def test_hook_timeout_kills_it_and_post_runs(tmp_path, src, dataset, drorch_env, e2e):
    log = tmp_path / "hooks.log"
    policy = src.policy(tmp_path, dataset, tmp_path / "repo", type="directory",
                        consistency={"pre": _hook(log, "pre", "sleep 30"), "post": _hook(log, "post"),
                                     "timeout": "1s"})
    started = time.monotonic()
    proc = e2e.run_drorch("apply", policy, "--yes", env=drorch_env)
    assert time.monotonic() - started < 20
    assert proc.returncode == 1
    assert "did not finish within 1s and was killed" in proc.stdout + proc.stderr
    assert _log(log)[-1] == "post vm none failed"


def test_command_snapshot_reads_the_printed_path_and_post_releases_it(tmp_path, src, drorch_env, restic,
                                                                       e2e):
    image = src.image(tmp_path / "live.raw", 8 * MiB, [(MiB, 2 * MiB)])
    frozen = tmp_path / "frozen.raw"
    log = tmp_path / "hooks.log"
    expected = tmp_path / "expected.raw"
    # pre takes the "snapshot" (a copy), then the live image keeps changing while it is read
    pre = ["sh", "-c", f"cp --sparse=always {image} {frozen} && cp {frozen} {expected} && "
                       f"printf changed-later | dd of={image} conv=notrunc status=none && "
                       f"echo taking snapshot >&2 && echo {frozen}"]
    post = ["sh", "-c", f'echo "release $DRORCH_SNAPSHOT_PATH $DRORCH_RESULT" >> {log}; '
                        'rm "$DRORCH_SNAPSHOT_PATH"']
    repo = tmp_path / "repo"
    policy = src.policy(tmp_path, image, repo, consistency={"snapshot": "command", "pre": pre, "post": post})
    e2e.apply_ok(policy, drorch_env)
    assert _log(log) == [f"release {frozen} ok"]
    assert not frozen.exists()
    [snap] = restic.snapshots(repo)
    assert snap["paths"] == [str(image)]  # recorded under the source's own path
    out = tmp_path / "out"
    restic("restore", "latest", "--target", out, repo=repo)
    restored = out / image.relative_to("/")
    assert filecmp.cmp(expected, restored, shallow=False)
    assert not filecmp.cmp(image, restored, shallow=False)


def test_post_runs_when_the_read_fails(tmp_path, src, drorch_env, e2e):
    image = src.image(tmp_path / "live.raw", MiB, [])
    log = tmp_path / "hooks.log"
    policy = src.policy(tmp_path, image, tmp_path / "repo", consistency={
        "snapshot": "command", "pre": ["echo", str(tmp_path / "no-such-snapshot.raw")],
        "post": _hook(log, "post")})
    proc = e2e.run_drorch("apply", policy, "--yes", env=drorch_env)
    assert proc.returncode == 1
    assert "does not exist" in proc.stdout + proc.stderr
    assert _log(log) == ["post vm command failed"]
    assert _no_snapshots(e2e, policy, drorch_env)


def test_sigterm_during_pre_still_runs_post(tmp_path, src, dataset, drorch_env, e2e):
    log = tmp_path / "hooks.log"
    policy = src.policy(tmp_path, dataset, tmp_path / "repo", type="directory",
                        consistency={"pre": _hook(log, "pre", "sleep 60"), "post": _hook(log, "post")})
    proc = e2e.start_drorch("apply", policy, "--yes", env=drorch_env)
    deadline = time.monotonic() + 30
    while not _log(log) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _log(log) == ["pre vm none "], "pre hook did not start"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert _log(log) == ["pre vm none ", "post vm none failed"]
    assert _no_snapshots(e2e, policy, drorch_env)


def test_command_snapshot_needs_a_pre_hook(tmp_path, src, drorch_env, e2e):
    image = src.image(tmp_path / "live.raw", MiB, [])
    policy = src.policy(tmp_path, image, tmp_path / "repo", consistency={"snapshot": "command"})
    proc = e2e.run_drorch("apply", policy, "--yes", "--quiet", env=drorch_env)
    assert proc.returncode == 1
    assert "needs a pre hook" in proc.stdout + proc.stderr


def test_sigterm_handler_is_restored_after_the_context(tmp_path):
    from drorch.policy.model import Source
    from drorch.sources.consistency import consistent

    before = signal.getsignal(signal.SIGTERM)
    source = Source(name="s", type="directory", path=tmp_path)
    with consistent(source, "m") as path:
        assert path == tmp_path
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
    assert sys.platform.startswith("linux")
