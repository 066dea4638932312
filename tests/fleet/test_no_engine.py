"""The single-host path needs no engine: drorch imports no Temporal module unless a fleet
command runs, and without the SDK a fleet command fails with one sentence naming the extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BLOCK_SDK = "import sys; sys.modules['temporalio'] = None; "


def test_cli_imports_no_engine() -> None:
    code = "import sys, drorch.cli.app; print(any(m.startswith('temporalio') for m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr


def test_fleet_command_without_sdk_is_one_sentence(tmp_path: Path) -> None:
    code = BLOCK_SDK + "from drorch.cli.app import main; sys.argv = ['drorch', 'fleet', 'run', 'p.yaml', " \
        "'--mirror', 'web']; main()"
    policy = tmp_path / "p.yaml"
    policy.write_text("""apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {name: p}
encryption: {key: env:DRORCH_KEY}
sources: [{name: s, type: directory, path: src}]
targets: [{name: t, url: "file://repo"}]
mirrors: [{name: web, source: s, targets: [t], rpo: 1h}]
""")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: fleet mode needs the Temporal SDK, which is not installed: "
                                   "pip install 'drorch[fleet]'")


def test_agent_exports_a_systemd_unit(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("""apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {name: p}
encryption: {key: env:DRORCH_KEY}
hosts: [{name: web1}]
sources: [{name: s, host: web1, type: directory, path: src}]
targets: [{name: t, url: "file://repo"}]
mirrors: [{name: web, source: s, targets: [t], rpo: 1h}]
""")
    proc = subprocess.run([sys.executable, "-m", "drorch", "agent", "--host", "web1", str(policy),
                           "--export", "systemd"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    unit = proc.stdout
    assert f"agent --host web1 {policy}" in unit and "KillSignal=SIGTERM" in unit
    assert "EnvironmentFile=-/etc/drorch/agent.env" in unit and "[Install]" in unit
    unknown = subprocess.run([sys.executable, "-m", "drorch", "agent", "--host", "web9", str(policy)],
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "no host named 'web9'" in unknown.stderr
