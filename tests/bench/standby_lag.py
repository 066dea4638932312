"""Standby lag: a write at the source until it is visible at the standby; following vs restoring.

    python tests/bench/standby_lag.py [--writes 100] [--gap 0.02-0.3] [--size 1G] [--changed 1]

1. **Data lag.** A throw-away policy (one source, one local target, ``schedule:
   continuous``, ``standby: {follow: continuous}``). ``drorch schedule`` and
   ``drorch standby`` run as two processes with their own ``$DRORCH_HOME``, as
   on two hosts. The bench writes ``--writes`` new files at random gaps and
   polls the standby path; a write's data lag is the time until the file is
   there with its full size. Prints p50/p95/max (goal on a 2-core machine:
   p50 <= 2 s, p95 <= 5 s).
2. **Follow vs restore.** A tree of ``--size`` bytes (1 MiB files) is
   snapshotted and followed once; then ``--changed`` percent of its files are
   rewritten and snapshotted again. Times applying that snapshot to the
   standby (``TreeSync``: only differing files) against a full restore of it
   into an empty directory, and prints the ratio.

Not a unit test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POLICY = """\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {{name: standby-lag}}
encryption: {{key: env:DRORCH_KEY}}
sources: [{{name: live, type: directory, path: live}}]
targets: [{{name: local, url: file://repo}}]
mirrors:
  - name: hot
    source: live
    targets: [local]
    rpo: 1m
    schedule: {schedule}
    standby: {{path: standby, follow: continuous}}
"""
MiB = 1024 * 1024


def _size(text: str) -> int:
    units = {"K": 1024, "M": MiB, "G": 1024 * MiB}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def _drorch(*args: str, home: Path, root: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, DRORCH_HOME=str(home), DRORCH_KEY="standby-bench-key")
    return subprocess.Popen([sys.executable, "-m", "drorch", *args], env=env, cwd=root,
                            stdout=open(home.with_suffix(".log"), "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def data_lag(root: Path, writes: int, gap: tuple[float, float]) -> None:
    (root / "live").mkdir()
    for i in range(200):  # some existing data, as a real source has
        (root / "live" / f"base-{i}.txt").write_bytes(os.urandom(4096))
    (root / "policy.yaml").write_text(POLICY.format(schedule="continuous"))
    first = _drorch("apply", "policy.yaml", "--quiet", home=root / "home-primary", root=root)
    first.wait()
    procs = [_drorch("schedule", "policy.yaml", home=root / "home-primary", root=root),
             _drorch("standby", "policy.yaml", "--mirror", "hot", "--poll", "0.2",
                     home=root / "home-standby", root=root)]
    try:
        _wait(lambda: (root / "standby" / "base-199.txt").exists(), 60)
        time.sleep(1.0)  # the watcher is up
        rng = random.Random(7)
        pending: dict[Path, tuple[float, int]] = {}
        lags: list[float] = []
        for i in range(writes):
            data = os.urandom(rng.randint(100, 65536))
            (root / "live" / f"w-{i:03}.txt").write_bytes(data)
            pending[root / "standby" / f"w-{i:03}.txt"] = (time.time(), len(data))
            _collect(pending, lags, until=time.time() + rng.uniform(*gap))
        _collect(pending, lags, until=time.time() + 60, stop_when_empty=True)
        if pending:
            sys.exit(f"{len(pending)} writes never reached the standby")
    finally:
        for proc in procs:
            os.killpg(proc.pid, 15)
            proc.wait(30)
    lags.sort()
    p95 = lags[min(len(lags) - 1, int(0.95 * len(lags)))]
    print(f"data lag over {writes} writes (gaps {gap[0]:g}-{gap[1]:g}s): p50 {statistics.median(lags):.2f}s  "
          f"p95 {p95:.2f}s  max {lags[-1]:.2f}s  (goal p50 <= 2s, p95 <= 5s)")


def _collect(pending: dict[Path, tuple[float, int]], lags: list[float], until: float,
             stop_when_empty: bool = False) -> None:
    while time.time() < until and not (stop_when_empty and not pending):
        for path, (written, size) in list(pending.items()):
            try:
                if path.stat().st_size == size:
                    lags.append(time.time() - written)
                    del pending[path]
            except FileNotFoundError:
                pass
        time.sleep(0.01)


def _wait(predicate: object, timeout: float) -> None:
    deadline = time.time() + timeout
    while not predicate():  # type: ignore[operator]
        if time.time() > deadline:
            sys.exit("the standby never got the first snapshot")
        time.sleep(0.1)


def follow_vs_restore(root: Path, size: int, changed_pct: float) -> None:
    os.environ["DRORCH_HOME"] = str(root / "home")
    os.environ["DRORCH_KEY"] = "standby-bench-key"
    live = root / "live"
    files = max(1, size // MiB)
    for i in range(files):
        path = live / f"d{i // 100:03}" / f"f{i:05}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(MiB))
    (root / "policy.yaml").write_text(POLICY.format(schedule="null"))

    from drorch.engine.apply import apply_policy
    from drorch.engine.operations import common_parts
    from drorch.engine.standby import Follower
    from drorch.policy import load_policy
    from drorch.restore.restorer import Restorer

    policy = load_policy(root / "policy.yaml")
    apply_policy(policy)
    follower = Follower(policy, "hot", log=lambda _: None)
    follower.catch_up()
    rng = random.Random(3)
    changed = rng.sample(range(files), max(1, int(files * changed_pct / 100)))
    for i in changed:
        (live / f"d{i // 100:03}" / f"f{i:05}.bin").write_bytes(os.urandom(MiB))
    apply_policy(policy)
    start = time.perf_counter()
    applied = follower.catch_up()
    follow_s = time.perf_counter() - start
    assert applied is not None and applied.stats is not None
    newest = follower.newest()
    assert newest is not None and newest.id == applied.snapshot
    start = time.perf_counter()
    Restorer(follower._repository()).restore(newest.tree, root / "full", strip=common_parts(newest.paths))
    restore_s = time.perf_counter() - start
    print(f"follow a {changed_pct:g}%-changed {size / MiB:.0f} MiB tree: {follow_s:.2f}s "
          f"({applied.stats.files_written} files written, {applied.stats.files_unchanged} untouched) vs "
          f"full restore {restore_s:.2f}s: {restore_s / follow_s:.1f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--gap", default="0.02-0.3", help="seconds between writes, MIN-MAX")
    parser.add_argument("--size", default="1G", help="tree size for follow vs restore (e.g. 256M)")
    parser.add_argument("--changed", type=float, default=1.0, help="percent of files changed")
    parser.add_argument("--only", choices=("lag", "follow"))
    args = parser.parse_args()
    low, high = (float(x) for x in args.gap.split("-"))
    for part in ("lag", "follow"):
        if args.only not in (None, part):
            continue
        root = Path(tempfile.mkdtemp(prefix=f"drorch-standby-{part}-"))
        try:
            if part == "lag":
                data_lag(root, args.writes, (low, high))
            else:
                follow_vs_restore(root, _size(args.size), args.changed)
        finally:
            if not os.environ.get("KEEP"):
                shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
