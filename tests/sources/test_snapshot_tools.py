"""Platform snapshots: btrfs against the real tools on a loop-mounted filesystem; LVM and ZFS
against stand-in executables that log their argv (this machine kind has no device-mapper and
no ZFS module). In every case the snapshot is removed afterwards, also when the read fails."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

MiB = 1024 * 1024


# ----------------------------------------------------------------------------- btrfs (real)


@pytest.fixture
def btrfs_subvolume(tmp_path: Path, loop_device, scratch_dir: Path) -> Iterator[Path]:
    """A subvolume ``vol`` on a fresh 160 MiB btrfs, loop-mounted (root, btrfs-progs, kernel support)."""
    if shutil.which("mkfs.btrfs") is None or shutil.which("btrfs") is None:
        pytest.skip("btrfs-progs is not installed (apt-get install btrfs-progs)")
    backing = tmp_path / "btrfs.img"
    with open(backing, "wb") as fh:
        fh.truncate(160 * MiB)
    if subprocess.run(["mkfs.btrfs", "-q", str(backing)], capture_output=True).returncode != 0:
        pytest.skip("mkfs.btrfs failed here")
    device = loop_device(backing)
    if subprocess.run(["mount", str(device), str(scratch_dir)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount btrfs here")
    try:
        subprocess.run(["btrfs", "subvolume", "create", str(scratch_dir / "vol")], check=True,
                       capture_output=True)
        yield scratch_dir / "vol"
    finally:
        subprocess.run(["umount", str(scratch_dir)], capture_output=True)


def _subvolumes(mount: Path) -> list[str]:
    done = subprocess.run(["btrfs", "subvolume", "list", str(mount)], capture_output=True, text=True,
                          check=True)
    return [line.split()[-1] for line in done.stdout.splitlines()]


def test_btrfs_directory_is_read_from_a_readonly_snapshot(tmp_path, btrfs_subvolume, src, drorch_env,
                                                          restic, e2e):
    data = e2e.build_dataset(btrfs_subvolume / "www")
    repo = tmp_path / "repo"
    policy = src.policy(tmp_path, data, repo, type="directory", consistency={"snapshot": "btrfs"})
    first = e2e.apply_ok(policy, drorch_env)
    assert _subvolumes(btrfs_subvolume.parent) == ["vol"], "the btrfs snapshot was not deleted"
    restic.check(repo, read_data=True)
    out = tmp_path / "out"
    restic("restore", "latest", "--target", out, repo=repo)
    e2e.assert_same_tree(data, e2e.restic_restored_root(out, data))
    again = e2e.apply_ok(policy, drorch_env)
    assert again["files_unmodified"] == first["files_new"]  # same inodes in each snapshot: not re-read


def test_btrfs_image_file(tmp_path, btrfs_subvolume, src, drorch_env, restic, e2e):
    image = src.image(btrfs_subvolume / "vm.raw", 16 * MiB, [(MiB, 3 * MiB)])
    repo = tmp_path / "repo"
    policy = src.policy(tmp_path, image, repo, consistency={"snapshot": "btrfs"})
    e2e.apply_ok(policy, drorch_env)
    assert _subvolumes(btrfs_subvolume.parent) == ["vol"]
    out = tmp_path / "out"
    restic("restore", "latest", "--target", out, repo=repo)
    assert filecmp.cmp(image, out / image.relative_to("/"), shallow=False)


def test_btrfs_refuses_a_path_outside_btrfs(tmp_path, src, dataset, drorch_env, e2e):
    if shutil.which("btrfs") is None:
        pytest.skip("btrfs-progs is not installed")
    policy = src.policy(tmp_path, dataset, tmp_path / "repo", type="directory",
                        consistency={"snapshot": "btrfs"})
    proc = e2e.run_drorch("apply", policy, "--yes", "--quiet", env=drorch_env)
    assert proc.returncode == 1
    assert "not on a btrfs subvolume" in proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- LVM (stand-ins)


def _lvm_stand_ins(stand_ins, backing: Path, snapshot_copy: Path, lv_path: Path | None = None) -> None:
    """lvs/lvcreate/lvremove that treat a copy of ``backing`` as the snapshot device."""
    stand_ins.add("lvs", f"""case "$*" in
  *lv_path*) echo "  {lv_path or snapshot_copy}" ;;
  *) echo "  vg0|data|-wi-ao----" ;;
esac""")
    stand_ins.add("lvcreate", f"cp --sparse=always {backing} {snapshot_copy}")
    stand_ins.add("lvremove", f"rm -f {snapshot_copy}")


def test_lvm_volume_snapshot_is_created_read_and_removed(tmp_path, src, loop_device, stand_ins, restic, e2e):
    backing = src.image(tmp_path / "lv.raw", 16 * MiB, [(0, 2 * MiB), (9 * MiB, MiB)])
    origin = loop_device(backing)
    snapshot_copy = tmp_path / "lv-snapshot.raw"
    _lvm_stand_ins(stand_ins, backing, snapshot_copy)
    repo = tmp_path / "repo"
    log = tmp_path / "hooks.log"
    policy = src.policy(tmp_path, origin, repo, type="volume", consistency={
        "snapshot": "lvm", "pre": ["sh", "-c", f"echo pre >> {log}"],
        "post": ["sh", "-c", f"echo post $DRORCH_SNAPSHOT_PATH >> {log}"]})
    e2e.apply_ok(policy, stand_ins.env)

    calls = stand_ins.calls()
    assert [c[0] for c in calls] == ["lvs", "lvcreate", "lvs", "lvremove"]
    name = calls[1][calls[1].index("--name") + 1]
    assert name.startswith("drorch-vm-")
    assert calls[1] == ["lvcreate", "--snapshot", "--extents", "20%ORIGIN", "--name", name, "vg0/data"]
    assert calls[3] == ["lvremove", "--yes", f"vg0/{name}"]
    assert calls[0][-1] == str(origin)
    # post (thaw) ran right after the snapshot, before the read
    assert log.read_text().splitlines() == ["pre", f"post {snapshot_copy}"]
    assert not snapshot_copy.exists()
    [snap] = restic.snapshots(repo)
    assert snap["paths"] == [str(origin)]
    out = tmp_path / "out"
    restic("restore", "latest", "--target", out, repo=repo)
    assert filecmp.cmp(backing, out / origin.relative_to("/"), shallow=False)


def test_lvm_snapshot_is_removed_when_the_read_fails(tmp_path, src, loop_device, stand_ins, e2e):
    backing = src.image(tmp_path / "lv.raw", 4 * MiB, [])
    origin = loop_device(backing)
    _lvm_stand_ins(stand_ins, backing, tmp_path / "copy.raw", lv_path=tmp_path / "gone" / "device")
    policy = src.policy(tmp_path, origin, tmp_path / "repo", type="volume", consistency={"snapshot": "lvm"})
    proc = e2e.run_drorch("apply", policy, "--yes", "--quiet", env=stand_ins.env)
    assert proc.returncode == 1
    assert "does not exist" in proc.stdout + proc.stderr
    assert [c[0] for c in stand_ins.calls()][-1] == "lvremove"


def test_lvm_tools_missing_is_one_clear_error(tmp_path, src, loop_device, drorch_env, e2e):
    origin = loop_device(src.image(tmp_path / "lv.raw", 4 * MiB, []))
    policy = src.policy(tmp_path, origin, tmp_path / "repo", type="volume", consistency={"snapshot": "lvm"})
    env = dict(drorch_env, PATH=str(tmp_path / "empty-bin"))
    proc = e2e.run_drorch("apply", policy, "--yes", "--quiet", env=env)
    assert proc.returncode == 1
    text = proc.stdout + proc.stderr
    assert "needs `lvs`, which is not installed" in text and "lvm2" in text
    assert "Traceback" not in text


# ----------------------------------------------------------------------------- ZFS (stand-ins)


def test_zfs_directory_is_read_below_dot_zfs_snapshot(tmp_path, src, stand_ins, restic, e2e):
    mountpoint = tmp_path / "tank"
    data = e2e.build_dataset(mountpoint / "www")
    snapdir = mountpoint / ".zfs" / "snapshot"
    stand_ins.add("zfs", f"""case "$1" in
  list) printf 'tank/data\\t{mountpoint}\\n' ;;
  snapshot) name="${{2#*@}}"; mkdir -p {snapdir}/$name && cp -a {data} {snapdir}/$name/ ;;
  destroy) name="${{2#*@}}"; rm -rf {snapdir}/$name ;;
esac""")
    repo = tmp_path / "repo"
    policy = src.policy(tmp_path, data, repo, type="directory", consistency={"snapshot": "zfs"})
    e2e.apply_ok(policy, stand_ins.env)
    calls = stand_ins.calls()
    assert [c[:2] for c in calls] == [["zfs", "list"], ["zfs", "snapshot"], ["zfs", "destroy"]]
    assert calls[1][2].startswith("tank/data@drorch-vm-")
    assert calls[2][2] == calls[1][2]
    assert list(snapdir.iterdir()) == []
    out = tmp_path / "out"
    restic("restore", "latest", "--target", out, repo=repo)
    e2e.assert_same_tree(data, e2e.restic_restored_root(out, data), mtimes=False)
