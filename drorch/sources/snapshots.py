"""Platform snapshots: a frozen, read-only view of a source for the time it is read.

Each method turns the source path into a ``Taken``: the path to read instead
(a snapshot device, or the same file or directory inside a snapshot) and how
to remove the snapshot again. ``release`` is called exactly once, whatever
happened in between; snapshots are named ``drorch-<mirror>-<random>`` so an
operator can tell them apart from their own and clean up after a power cut.

- ``lvm``: ``lvcreate --snapshot`` of the logical volume (thin volumes get a thin
  snapshot, others 20% of the origin's size for changes while it is read). A
  volume source reads the snapshot device; a directory or image on a mounted
  LV reads it through a read-only mount of the snapshot. ``lvremove`` after.
- ``zfs``: ``zfs snapshot DATASET@NAME``; files are read below
  ``MOUNTPOINT/.zfs/snapshot/NAME``, a zvol from ``/dev/zvol/DATASET@NAME`` (the
  zvol needs ``snapdev=visible``). ``zfs destroy`` after.
- ``btrfs``: a read-only snapshot of the subvolume holding the path, created
  inside it as ``.drorch-snapshot-<mirror>-<random>``; ``btrfs subvolume delete``
  after. Not for block devices.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from drorch.ports.errors import SourceError
from drorch.sources import hooks

ZVOL_DEVICES = Path("/dev/zvol")
DEVICE_WAIT_S = 10.0
BTRFS_SUBVOLUME_ROOT_INODE = 256


@dataclass
class Taken:
    read_path: Path
    description: str  # what was created, for messages: "LVM snapshot vg/drorch-web-1a2b"
    _release: list[Callable[[], None]] = field(default_factory=list)

    def release(self) -> None:
        """Undo every step, last first; all are tried, the first failure is raised."""
        failure: SourceError | None = None
        for undo in reversed(self._release):
            try:
                undo()
            except SourceError as err:
                failure = failure or err
        self._release.clear()
        if failure:
            raise failure


class Snapshotter:
    """Runs the tools of one snapshot method with the policy's timeout."""

    def __init__(self, method: str, mirror: str, timeout_s: float) -> None:
        self.method = method
        self.timeout_s = timeout_s
        self.name = f"drorch-{_safe(mirror)}-{secrets.token_hex(3)}"

    def _run(self, *argv: str) -> str:
        hooks.require_tool(argv[0], self.method)
        return hooks.run(argv, what=f"{self.method} command `{' '.join(argv[:2])}`",
                         timeout_s=self.timeout_s).stdout

    def take(self, path: Path, kind: str) -> Taken:
        if self.method == "lvm":
            return self._lvm(path, kind)
        if self.method == "zfs":
            return self._zfs(path, kind)
        if self.method == "btrfs":
            return self._btrfs(path, kind)
        raise SourceError(f"unknown snapshot method {self.method!r}")

    # -- LVM ------------------------------------------------------------------------------

    def _lvm(self, path: Path, kind: str) -> Taken:
        if kind == "volume":
            device, mount, fstype, rel = path, None, "", Path()
        else:
            device, mount, fstype = self._mounted_on(path)
            rel = path.relative_to(mount)
        fields = self._run("lvs", "--noheadings", "--separator", "|", "-o", "vg_name,lv_name,lv_attr",
                           str(device)).strip().split("|")
        if len(fields) < 3:
            raise SourceError(f"{device} is not an LVM logical volume, so it cannot have an LVM snapshot",
                              hint="choose the snapshot method of the storage it is on")
        vg, lv, attr = (f.strip() for f in fields[:3])
        thin = attr.startswith("V")
        size = [] if thin else ["--extents", "20%ORIGIN"]
        activate = ["--setactivationskip", "n"] if thin else []
        self._run("lvcreate", "--snapshot", *size, *activate, "--name", self.name, f"{vg}/{lv}")
        taken = Taken(Path(), f"LVM snapshot {vg}/{self.name}")
        taken._release.append(lambda: self._run_quiet("lvremove", "--yes", f"{vg}/{self.name}"))
        try:
            snap = Path(self._run("lvs", "--noheadings", "-o", "lv_path", f"{vg}/{self.name}").strip()
                        or f"/dev/{vg}/{self.name}")
            if mount is None:
                taken.read_path = snap
            else:
                taken.read_path = self._mount_readonly(snap, fstype, taken) / rel
        except BaseException:
            taken.release()
            raise
        return taken

    def _mounted_on(self, path: Path) -> tuple[Path, Path, str]:
        out = self._run("findmnt", "--noheadings", "--first-only", "--output", "SOURCE,TARGET,FSTYPE",
                        "--target", str(path)).split()
        if len(out) < 3:
            raise SourceError(f"cannot tell which filesystem holds {path}")
        return Path(out[0]), Path(out[1]), out[2]

    def _mount_readonly(self, device: Path, fstype: str, taken: Taken) -> Path:
        where = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        taken._release.append(lambda: _rmdir(where))
        options = "ro,nouuid" if fstype == "xfs" else "ro"
        self._run("mount", "-o", options, str(device), str(where))
        taken._release.append(lambda: self._run_quiet("umount", str(where)))
        return where

    # -- ZFS ------------------------------------------------------------------------------

    def _zfs(self, path: Path, kind: str) -> Taken:
        if kind == "volume":
            try:
                dataset = str(path.relative_to(ZVOL_DEVICES))
            except ValueError:
                raise SourceError(f"{path} is not a zvol (expected a path below {ZVOL_DEVICES})",
                                  hint="give the volume as /dev/zvol/POOL/NAME") from None
            mountpoint = None
        else:
            listed = self._run("zfs", "list", "-H", "-o", "name,mountpoint", str(path)).split("\t")
            if len(listed) < 2:
                raise SourceError(f"{path} is not on a ZFS dataset, so it cannot have a ZFS snapshot")
            dataset, mountpoint = listed[0].strip(), Path(listed[1].strip())
        snap = f"{dataset}@{self.name}"
        self._run("zfs", "snapshot", snap)
        taken = Taken(Path(), f"ZFS snapshot {snap}")
        taken._release.append(lambda: self._run_quiet("zfs", "destroy", snap))
        if mountpoint is None:
            taken.read_path = ZVOL_DEVICES / snap
            if not _wait_for(taken.read_path):
                taken.release()
                raise SourceError(f"the snapshot device {taken.read_path} did not appear",
                                  hint=f"run `zfs set snapdev=visible {dataset}` once")
        else:
            taken.read_path = mountpoint / ".zfs" / "snapshot" / self.name / path.relative_to(mountpoint)
        return taken

    # -- btrfs ----------------------------------------------------------------------------

    def _btrfs(self, path: Path, kind: str) -> Taken:
        if kind == "volume":
            raise SourceError("consistency.snapshot: btrfs applies to directories and image files on "
                              "btrfs, not to block devices", hint="use lvm or zfs for volumes")
        subvolume = _btrfs_subvolume(path if kind == "directory" else path.parent)
        snap = subvolume / f".{self.name.replace('drorch-', 'drorch-snapshot-', 1)}"
        self._run("btrfs", "subvolume", "snapshot", "-r", str(subvolume), str(snap))
        taken = Taken(snap / path.relative_to(subvolume), f"btrfs snapshot {snap}")
        taken._release.append(lambda: self._run_quiet("btrfs", "subvolume", "delete", str(snap)))
        return taken

    def _run_quiet(self, *argv: str) -> None:
        self._run(*argv)


def _btrfs_subvolume(path: Path) -> Path:
    """The root of the btrfs subvolume holding ``path`` (inode 256, same device number)."""
    try:
        current = path.resolve()
        dev = current.stat().st_dev
        while current.stat().st_ino != BTRFS_SUBVOLUME_ROOT_INODE:
            parent = current.parent
            if parent == current or parent.stat().st_dev != dev:
                raise SourceError(f"{path} is not on a btrfs subvolume, so it cannot have a btrfs "
                                  "snapshot", hint="choose the snapshot method of its filesystem")
            current = parent
    except OSError as err:
        raise SourceError(f"cannot inspect {path}: {err.strerror or err}") from None
    return current


def _wait_for(path: Path) -> bool:
    deadline = time.monotonic() + DEVICE_WAIT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if stat.S_ISBLK(os.stat(path).st_mode):
                return True
        time.sleep(0.1)
    return False


def _rmdir(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:40]
