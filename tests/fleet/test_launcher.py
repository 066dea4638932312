"""The agent's fork server (drorch.fleet.launcher/forkserver), without an engine.

Real jobs are forked from a real server process: the result comes back on
the job's stdout, a killed job's whole session dies, a policy edited
between jobs takes effect at the next job, and a server killed with -9
takes its running job with it, is restarted for the next one, and the
repository stays clean (``restic check --read-data``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

from drorch.fleet.job import SLOW_PUT_ENV
from drorch.fleet.launcher import JobLauncher

from .helpers import make_data, restic_check, restic_snapshots, write_policy
from support.processes import alive


@pytest.fixture
def policy(tmp_path: Path, drorch_key: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRORCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DRORCH_KEY", drorch_key)
    source = make_data(tmp_path / "src", 2)
    return write_policy(tmp_path / "policy.yaml", "launcher", source, tmp_path / "repo")


def _run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def test_a_forked_job_reports_its_snapshot_and_restic_agrees(policy: Path, tmp_path: Path,
                                                              drorch_key: str) -> None:
    async def two_jobs() -> list[tuple[int, dict[str, object]]]:
        launcher = JobLauncher(policy)
        try:
            results = []
            for job_id in ("run-1", "run-2"):
                job = await launcher.launch("web", job_id)
                out, err = await job.communicate()
                assert job.returncode == 0, err.decode()
                results.append((job.pid, json.loads(out)))
            return results
        finally:
            launcher.stop()

    results = _run(two_jobs())
    assert isinstance(results, list) and len(results) == 2
    (pid1, first), (pid2, second) = results
    assert pid1 != pid2 and pid1 != os.getpid()
    assert first["exit_code"] == 0 and first["mirrors"][0]["targets"][0]["snapshot"]
    assert _job_tags(tmp_path / "repo", drorch_key) == ["drorch-job:run-1", "drorch-job:run-2"]
    restic_check(tmp_path / "repo", drorch_key)


def test_an_edited_policy_takes_effect_at_the_next_job(policy: Path) -> None:
    async def broken_then_fixed() -> list[tuple[int, bytes]]:
        launcher = JobLauncher(policy)
        good = policy.read_text()
        try:
            launcher.start()
            policy.write_text(good.replace("mirrors:", "mirrors:\n  - {name: bad, source: nowhere}"))
            job = await launcher.launch("web", "edited")
            _, err = await job.communicate()
            broken = (job.returncode or 0, err)
            policy.write_text(good)
            job = await launcher.launch("web", "fixed")
            _, err = await job.communicate()
            return [broken, (job.returncode or 0, err)]
        finally:
            launcher.stop()

    result = _run(broken_then_fixed())
    assert isinstance(result, list)
    (code, err), (fixed, _) = result
    assert code == 2 and b"PolicyError" in err and b"nowhere" in err, err
    assert fixed == 0


def test_a_killed_server_takes_its_job_and_is_restarted(policy: Path, tmp_path: Path, drorch_key: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SLOW_PUT_ENV, "30")

    async def kill_server_mid_job() -> tuple[int, int, bool]:
        launcher = JobLauncher(policy)
        try:
            job = await launcher.launch("web", "doomed")
            await asyncio.sleep(1.0)
            server = launcher._server  # noqa: SLF001 - the test plays the OOM killer
            assert server is not None
            os.kill(server.pid, signal.SIGKILL)
            code = await asyncio.wait_for(job.wait(), 20)
            await asyncio.sleep(0.5)  # the kernel delivers PDEATHSIG to the job
            job_alive = alive(job.pid)
            os.environ.pop(SLOW_PUT_ENV)
            again = await launcher.launch("web", "after")
            out, err = await again.communicate()
            assert again.returncode == 0, (out + err).decode()
            return code, again.returncode or 0, job_alive
        finally:
            launcher.stop()

    result = _run(kill_server_mid_job())
    assert isinstance(result, tuple)
    code, after, job_alive = result
    assert code == -9 and not job_alive
    assert after == 0
    assert _job_tags(tmp_path / "repo", drorch_key) == ["drorch-job:after"]
    restic_check(tmp_path / "repo", drorch_key)


def test_killing_the_session_stops_the_job(policy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SLOW_PUT_ENV, "30")

    async def kill_job() -> int:
        launcher = JobLauncher(policy)
        try:
            job = await launcher.launch("web", "stopped")
            await asyncio.sleep(0.5)
            os.killpg(job.pid, signal.SIGKILL)
            _, _ = await asyncio.wait_for(job.communicate(), 20)
            return job.returncode or 0
        finally:
            launcher.stop()

    assert _run(kill_job()) == -signal.SIGKILL


def _job_tags(repo: Path, key: str) -> list[str]:
    tags = (t for snapshot in restic_snapshots(repo, key) for t in snapshot["tags"] or [])
    return sorted(t for t in tags if t.startswith("drorch-job:"))
