"""SPEC §6: a second ``apply`` on the same repository waits or fails clearly, never corrupts."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.restic

BUSY = re.compile(r"busy|locked|lock held|another process", re.IGNORECASE)


def _race(policy, env, e2e, *extra: str):
    procs = [e2e.start_drorch("apply", policy, "--quiet", "--yes", *extra, env=env)
             for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append((proc.returncode, out, err))
    return results


def _check_outcomes(results, secret: str, complaints: list[str]) -> int:
    """Both ended cleanly (0 or 1); returns the winners. A loser that did not say why in one
    sentence on stderr is added to ``complaints`` (checked after the repository's integrity)."""
    winners = 0
    for code, out, err in results:
        shown = f"exit {code}\nstdout: {out}\nstderr: {err}"
        assert code in (0, 1), shown
        assert "Traceback" not in out + err and "internal error" not in err.lower(), shown
        assert secret not in out + err, shown
        if code == 0:
            winners += 1
            continue
        lines = [line for line in err.splitlines() if line.strip()]
        if not (len(lines) == 1 and BUSY.search(lines[0])):
            complaints.append(shown)
    return winners


@pytest.mark.parametrize("fresh", [False, True], ids=["existing-repo", "fresh-repo"])
def test_two_applies_at_once(tmp_path, dataset, drorch_env, drorch_key, restic, e2e, fresh):
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo)
    before = 0
    if not fresh:
        e2e.apply_ok(policy, drorch_env)
        before = 1
    rounds = 3 if not fresh else 1
    winners = 0
    complaints: list[str] = []
    for round_ in range(rounds):
        # fresh data each round keeps a run busy for a while under its lock: the runs overlap
        (dataset / "fresh.bin").write_bytes(e2e.random_bytes(12 * e2e.MiB, f"race-{round_}"))
        winners += _check_outcomes(_race(policy, drorch_env, e2e), drorch_key, complaints)
    snapshots = e2e.drorch_json("snapshots", policy, env=drorch_env)["local"]
    assert len(snapshots) == before + winners
    assert winners >= 1, "both concurrent applies failed: neither made a snapshot"
    assert list((repo / "locks").iterdir()) == [], "locks were left behind"
    restic.check(repo, read_data=True)
    out = tmp_path / "out"
    proc = e2e.run_drorch("restore", policy, "latest", "--to", out, "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    e2e.assert_same_tree(dataset, out)
    assert not complaints, ("the losing run should say on stderr, in one sentence, that the "
                            "repository is busy:\n" + "\n".join(complaints))


def test_lock_wait_lets_the_second_apply_finish(tmp_path, dataset, drorch_env, drorch_key,
                                                restic, e2e):
    """With --lock-wait the second run waits for the first instead of failing."""
    repo = tmp_path / "repo"
    policy = e2e.make_policy(tmp_path, dataset, repo)
    e2e.apply_ok(policy, drorch_env)
    results = _race(policy, drorch_env, e2e, "--lock-wait", "60")
    for code, out, err in results:
        assert code == 0, f"exit {code}\nstdout: {out}\nstderr: {err}"
    assert len(e2e.drorch_json("snapshots", policy, env=drorch_env)["local"]) == 3
    restic.check(repo, read_data=False)
