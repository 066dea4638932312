"""`drorch validate` checks drill verify templates against the drill's runbook, like `drorch drill`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def test_validate_reports_an_unknown_step_in_a_drill_verify(tmp_path: Path) -> None:
    shutil.copytree(POLICIES / "runbooks", tmp_path / "runbooks")
    text = (POLICIES / "aws-dr.yaml").read_text()
    assert "outputs.vm.ip" in text
    (tmp_path / "policy.yaml").write_text(text.replace("outputs.vm.ip", "outputs.nosuchstep.ip", 1))
    proc = subprocess.run([sys.executable, "-m", "drorch", "validate", str(tmp_path / "policy.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "drills[0].verify[0]" in proc.stderr and "nosuchstep" in proc.stderr
    assert "Traceback" not in proc.stderr
