"""Variants of the shipped policies that tests need."""

from __future__ import annotations

import shutil
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]


def aws_dr_with_ebs_launch(dest_dir: Path) -> Path:
    """policies/aws-dr.yaml (and its runbooks) with the recovery launched from an EBS snapshot
    instead of restoring the directory mirror at boot (moto runs no user-data). Returns the policy."""
    yaml = YAML()
    doc = yaml.load((ROOT / "policies" / "aws-dr.yaml").read_text())
    for recovery in doc["recovery"]:
        recovery.pop("restore", None)
        recovery["instance"].pop("profile", None)
    policy = dest_dir / "aws-dr.yaml"
    with policy.open("w") as out:
        yaml.dump(doc, out)
    shutil.copytree(ROOT / "policies" / "runbooks", dest_dir / "runbooks")
    (dest_dir / "example-data").mkdir(exist_ok=True)
    return policy
