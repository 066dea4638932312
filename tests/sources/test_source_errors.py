"""Image and volume errors are one sentence each, and none leaves a snapshot that looks valid."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

MiB = 1024 * 1024


def _snapshot_count(e2e, policy, env) -> int:
    return len(e2e.drorch_json("snapshots", policy, env=env)["local"])


def test_an_image_shorter_than_last_time_is_refused(tmp_path, src, drorch_env, e2e):
    image = src.image(tmp_path / "vm.raw", 16 * MiB, [(0, MiB), (15 * MiB, MiB)])
    policy = src.policy(tmp_path, image, tmp_path / "repo")
    e2e.apply_ok(policy, drorch_env)
    os.truncate(image, 8 * MiB)
    proc = e2e.run_drorch("apply", policy, "--yes", "--quiet", env=drorch_env)
    assert proc.returncode == 1
    text = proc.stdout + proc.stderr
    assert "shorter than the 16777216 bytes of the last snapshot" in text
    assert "DRORCH_ALLOW_SHRINK=1" in text
    assert _snapshot_count(e2e, policy, drorch_env) == 1
    e2e.apply_ok(policy, dict(drorch_env, DRORCH_ALLOW_SHRINK="1"))
    assert _snapshot_count(e2e, policy, drorch_env) == 2


def test_permission_denied_on_the_image(tmp_path, src, drorch_env, e2e):
    """As root without CAP_DAC_OVERRIDE (setpriv), a 0600 image of another user cannot be read."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to drop the capability that overrides permissions")
    image = src.image(tmp_path / "vm.raw", MiB, [(0, 4096)])
    image.chmod(0o600)
    os.chown(image, 1234, 1234)
    policy = src.policy(tmp_path, image, tmp_path / "repo")
    argv = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", *e2e.drorch_argv(),
            "apply", str(policy), "--yes", "--quiet"]
    proc = subprocess.run(argv, env=drorch_env, capture_output=True, text=True, timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1, text
    assert f"permission denied to read {image}" in text
    assert "Traceback" not in text


def test_plan_names_a_volume_that_is_not_a_block_device(tmp_path, src, drorch_env, e2e):
    image = src.image(tmp_path / "vm.raw", MiB, [])
    policy = src.policy(tmp_path, image, tmp_path / "repo", type="volume")
    proc = e2e.run_drorch("plan", policy, env=drorch_env)
    assert proc.returncode == 1
    assert "is not a block device" in proc.stdout + proc.stderr


def test_missing_image_is_a_plan_problem(tmp_path, src, drorch_env, e2e):
    policy = src.policy(tmp_path, tmp_path / "absent.raw", tmp_path / "repo")
    proc = e2e.run_drorch("apply", policy, "--yes", "--quiet", env=drorch_env)
    assert proc.returncode == 1
    assert "absent.raw does not exist" in proc.stdout + proc.stderr
