"""Cleanup after a drill, and the sweep of what earlier drills left behind.

Cleanup is by tag, not by memory: at the end of every drill (passed, failed,
interrupted by SIGTERM/SIGINT) everything tagged ``drorch:drill=ID`` in the
clouds the policy's recoveries use is removed, with the drill's scratch
directory. A drill killed outright (``kill -9``, power loss) cannot clean up,
so every drill first sweeps: resources tagged as sandbox resources of the same
policy whose drill is no longer running (its lock is free), and scratch
directories of dead drills. Production resources never carry these tags, so
the sweep cannot touch them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from drorch.drill.locks import is_locked
from drorch.ports.deadline import Deadline
from drorch.ports.sandbox import DRILL_TAG, POLICY_TAG, SANDBOX_TAG, SandboxCloud

__all__ = ["cleanup_drill", "drill_lock_path", "scratch_root", "sweep_leftovers"]


def scratch_root(home: Path) -> Path:
    return home / "drills"


def drill_lock_path(home: Path, drill_id: str) -> Path:
    return home / "drill-locks" / f"{drill_id}.lock"


def sweep_leftovers(clouds: list[SandboxCloud], *, policy: str, own_id: str, home: Path,
                    deadline: Deadline) -> tuple[list[str], list[str]]:
    """Remove sandbox resources and scratch space of drills of ``policy`` that are not running."""
    removed: list[str] = []
    errors: list[str] = []
    for cloud in clouds:
        try:
            found = cloud.leftovers({SANDBOX_TAG: "true", POLICY_TAG: policy})
        except Exception as err:  # noqa: BLE001 - a sweep that cannot list is reported, not fatal
            errors.append(f"could not list leftovers in {cloud.location}: {err}")
            continue
        stale = [i for i in found
                 if i.drill_id != own_id and not is_locked(drill_lock_path(home, i.drill_id))]
        if stale:
            done, failed = cloud.remove(stale, deadline)
            removed += [f"{item} in {cloud.location}" for item in done]
            errors += failed
    root = scratch_root(home)
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.name != own_id and not is_locked(drill_lock_path(home, folder.name)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(f"scratch directory {folder}")
            drill_lock_path(home, folder.name).unlink(missing_ok=True)
    return removed, errors


def cleanup_drill(clouds: list[SandboxCloud], *, drill_id: str, scratch: Path,
                  deadline: Deadline) -> tuple[list[str], list[str]]:
    """Remove everything tagged with ``drill_id`` and the drill's scratch directory."""
    removed: list[str] = []
    errors: list[str] = []
    for cloud in clouds:
        try:
            found = cloud.leftovers({DRILL_TAG: drill_id})
        except Exception as err:  # noqa: BLE001
            errors.append(f"could not list the drill's resources in {cloud.location}: {err}")
            continue
        done, failed = cloud.remove(found, deadline)
        removed += [f"{item} in {cloud.location}" for item in done]
        errors += failed
    if scratch.exists():
        shutil.rmtree(scratch, ignore_errors=True)
        removed.append(f"scratch directory {scratch}")
    return removed, errors
