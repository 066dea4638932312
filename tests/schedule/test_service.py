"""The scheduler process: one per state store, SIGTERM, export, metrics, real mirror jobs, continuous mode."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from drorch.policy import load_policy
from drorch.schedule import ContinuousMirror, Job, PolicyJobRunner, export_cron, export_systemd
from drorch.schedule.metrics import MetricsServer
from drorch.schedule.service import SchedulerBusy, scheduler_lock

POLICY = """\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {name: shop}
encryption: {key: env:DRORCH_KEY}
sources:
  - {name: data, type: directory, path: data}
  - {name: live, type: directory, path: live}
targets:
  - {name: local, url: file://repo}
mirrors:
  - {name: web, source: data, targets: [local], rpo: 1h, schedule: "*/15 * * * *"}
  - {name: hot, source: live, targets: [local], rpo: 1m, schedule: continuous}
"""


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRORCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DRORCH_KEY", "schedule-test-key")
    for name in ("data", "live"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.txt").write_text(f"{name}\n")
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRORCH_")}
    env.update(DRORCH_HOME=str(tmp_path / "home"), DRORCH_KEY="schedule-test-key", PYTHONUNBUFFERED="1",
               NO_COLOR="1", COLUMNS="200")
    return env


def test_second_scheduler_on_one_state_store_refuses(tmp_path: Path) -> None:
    with scheduler_lock(tmp_path, "shop"), pytest.raises(SchedulerBusy) as caught:
        scheduler_lock(tmp_path, "other")
    assert f"another drorch schedule (pid {os.getpid()}, policy shop) is already running" in str(caught.value)
    with scheduler_lock(tmp_path, "other"):  # released: the next one may start
        pass


def test_cli_scheduler_twice_and_sigterm(policy: Path, tmp_path: Path) -> None:
    env = _env(tmp_path)
    first = subprocess.Popen(["drorch", "schedule", str(policy), "--job", "mirror:web"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL)
    try:
        assert first.stdout is not None
        line = first.stdout.readline()
        assert "scheduled mirror:web on '*/15 * * * *'" in line, line
        second = subprocess.run(["drorch", "schedule", str(policy)], env=env, capture_output=True, text=True,
                                timeout=60, stdin=subprocess.DEVNULL)
        assert second.returncode == 1
        lines = [x for x in second.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and "another drorch schedule (pid" in lines[0] and "policy shop" in lines[0]
        assert "Traceback" not in second.stderr
        first.send_signal(signal.SIGTERM)
        stdout, stderr = first.communicate(timeout=30)
        assert first.returncode == 0, stderr
        assert "SIGTERM: stopping" in stdout and "scheduler stopped" in stdout
    finally:
        if first.poll() is None:
            first.kill()


def test_export_systemd_and_cron(policy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRORCH_HOME", str(tmp_path / "home"))
    loaded = load_policy(policy)
    units = export_systemd(loaded, policy)
    assert "### drorch-shop-mirror-web.timer" in units and "OnCalendar=*-*-* *:00/15:00" in units
    assert f"apply {policy} --mirror web --yes --quiet" in units
    assert f"schedule {policy} --job mirror:hot" in units and "Type=simple" in units
    assert "schedule-test-key" not in units and "EnvironmentFile=/etc/drorch/drorch.env" in units
    cron = export_cron(loaded, policy)
    assert f"*/15 * * * * flock -n {tmp_path}/home/cron-locks/drorch-shop-mirror-web.lock" in cron
    assert "# mirror:hot is continuous" in cron
    analyze = shutil.which("systemd-analyze")
    if analyze:
        when = next(x for x in units.splitlines() if x.startswith("OnCalendar=")).split("=", 1)[1]
        assert subprocess.run([analyze, "calendar", when], capture_output=True).returncode == 0


def test_metrics_endpoint_on_loopback() -> None:
    server = MetricsServer(0, lambda: "drorch_rpo_breach 0\n")
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as reply:
            assert reply.read() == b"drorch_rpo_breach 0\n"
            assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/other", timeout=5)
        assert server.server.server_address[0] == "127.0.0.1"
    finally:
        server.stop()


def test_mirror_job_uses_the_applier_and_reports_a_missing_source(policy: Path, tmp_path: Path) -> None:
    runner = PolicyJobRunner(policy, home=tmp_path / "home")
    outcome = runner(Job("mirror", "web", "*/15 * * * *"), threading.Event())
    assert outcome.startswith("ok: local "), outcome
    shutil.rmtree(tmp_path / "data")
    outcome = runner(Job("mirror", "web", "*/15 * * * *"), threading.Event())
    assert outcome.startswith("failed: source path") and "does not exist" in outcome, outcome


class Triggers:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.event = threading.Event()

    def __call__(self, job: Job, why: str) -> bool:
        self.calls.append(why)
        self.event.set()
        return True


def test_continuous_burst_becomes_one_snapshot(tmp_path: Path) -> None:
    source = tmp_path / "live"
    source.mkdir()
    triggers, lines = Triggers(), []
    watcher = ContinuousMirror(Job("mirror", "hot", None), source, triggers, log=lines.append,
                               quiet_s=0.3, max_delay_s=3.0, poll_s=0.1)
    watcher.start()
    try:
        assert triggers.event.wait(10)  # the snapshot at start
        triggers.event.clear()
        time.sleep(0.3)
        for i in range(20):
            (source / f"f{i}.txt").write_text(str(i))
        assert triggers.event.wait(10)
        time.sleep(0.8)
        assert len(triggers.calls) == 2, triggers.calls
        assert triggers.calls[0].startswith("start:") and "change(s) in" in triggers.calls[1]
    finally:
        watcher.stop()


def test_continuous_source_disappears_and_returns(tmp_path: Path) -> None:
    source = tmp_path / "live"
    source.mkdir()
    triggers, lines = Triggers(), []
    watcher = ContinuousMirror(Job("mirror", "hot", None), source, triggers, log=lines.append,
                               quiet_s=0.1, max_delay_s=1.0, poll_s=0.05)
    watcher.start()
    try:
        time.sleep(0.3)
        shutil.rmtree(source)
        deadline = time.monotonic() + 10
        while not any("disappeared" in x for x in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        triggers.event.clear()
        before = len(triggers.calls)
        assert [x for x in lines if "disappeared" in x] == [
            f"mirror:hot: source {source} disappeared; nothing is snapshotted until it is back, "
            "so the RPO will be breached"]
        source.mkdir()
        assert triggers.event.wait(10)
        assert len(triggers.calls) > before
        assert any("is back; snapshotting it" in x for x in lines)
    finally:
        watcher.stop()
