"""checkov finds no failing check in any module (offline: no platform download).

Open-source checkov has no severities without a platform API key, so this asks
for more than "no high-severity failure": no failure at all. Every check a
module skips is skipped in its .tf file with the reason (``#checkov:skip=ID:why``)
and listed in its README (tests/terraform/test_modules.py).

checkov pins its own dependencies (boto3 among them), so it lives in a venv of
its own: ``$CHECKOV``, ``checkov`` on PATH, or ``.venv-checkov/bin/checkov`` in
the repository. Without any of them the test is skipped, saying how to install it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .hcl import ROOT, TERRAFORM
from .test_modules import skipped_checks

INSTALL = "python -m venv .venv-checkov && .venv-checkov/bin/pip install 'checkov>=3.2,<4'"


def _checkov() -> str | None:
    candidates = [os.environ.get("CHECKOV"), shutil.which("checkov"), str(ROOT / ".venv-checkov/bin/checkov")]
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


@pytest.fixture(scope="module")
def checkov() -> str:
    found = _checkov()
    if found is None:
        pytest.skip(f"checkov is not installed; install it beside the project: {INSTALL}")
    return found


def scan(checkov: str, directory: Path) -> dict[str, Any]:
    done = subprocess.run(
        [checkov, "--directory", str(directory), "--framework", "terraform", "--output", "json",
         "--skip-download", "--download-external-modules", "false"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT": ""})
    assert done.stdout.strip(), f"checkov printed nothing (exit {done.returncode}): {done.stderr[-2000:]}"
    report = json.loads(done.stdout)
    assert isinstance(report, dict), f"unexpected checkov report: {done.stdout[:500]}"
    return report


def test_checkov_finds_no_failure(checkov: str, cloud: str) -> None:
    report = scan(checkov, TERRAFORM / cloud)
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): "
              f"{c['check_name']}" for c in report["results"].get("failed_checks", [])]
    print(f"checkov terraform/{cloud}: passed {summary['passed']}, failed {summary['failed']}, "
          f"skipped {summary['skipped']}")
    assert summary["parsing_errors"] == 0
    assert not failed, "checkov failures:\n" + "\n".join(failed)
    assert summary["passed"] > 20, "checkov checked almost nothing: did it read the module?"
    skipped = {c["check_id"] for c in report["results"].get("skipped_checks", [])}
    assert skipped == set(skipped_checks(cloud)), "every skip in the code is one checkov applied"
