"""Continuous-mode lag: from a file write to the snapshot holding it being committed.

    python tests/bench/continuous_lag.py [--writes 100] [--quiet 0.5] [--max-delay 5]

Sets up a throw-away policy (one source, one local target, ``schedule:
continuous``), starts the real watcher (watchdog/inotify) and the real
scheduler job runner (``Applier``), then writes files at random intervals
(20–300 ms). A write's lag is the commit time of the first snapshot that
*started* after the write (so it certainly holds it) minus the write time.
Prints p50/p95/max. Not a unit test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

POLICY = """\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {name: lag}
encryption: {key: env:DRORCH_KEY}
sources: [{name: live, type: directory, path: live}]
targets: [{name: local, url: file://repo}]
mirrors: [{name: hot, source: live, targets: [local], rpo: 1m, schedule: continuous}]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--quiet", type=float, default=0.5, help="debounce: quiet period (s)")
    parser.add_argument("--max-delay", type=float, default=5.0, help="debounce: longest wait (s)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="drorch-lag-") as tmp:
        root = Path(tmp)
        os.environ["DRORCH_HOME"] = str(root / "home")
        os.environ["DRORCH_KEY"] = "lag-bench-key"
        (root / "live").mkdir()
        for i in range(200):  # some existing data, as a real source has
            (root / "live" / f"base-{i}.txt").write_bytes(os.urandom(4096))
        (root / "policy.yaml").write_text(POLICY)

        from drorch.schedule import ContinuousMirror, Job, PolicyJobRunner, Scheduler, ScheduleStore

        runs: list[tuple[float, float]] = []  # (start, commit) of each snapshot
        real = PolicyJobRunner(root / "policy.yaml", home=root / "home")

        def runner(job: Job, cancel: threading.Event) -> str:
            start = time.time()
            outcome = real(job, cancel)
            if outcome.startswith("ok"):
                runs.append((start, time.time()))
            return outcome

        store = ScheduleStore(root / "home" / "state.db")
        scheduler = Scheduler("lag", [], runner, store, log=lambda _: None)
        job = Job("mirror", "hot", None)
        runner(job, threading.Event())  # the first, full snapshot is not what we measure
        runs.clear()
        watcher = ContinuousMirror(job, root / "live", scheduler.start_job, log=print,
                                   quiet_s=args.quiet, max_delay_s=args.max_delay, poll_s=0.2)
        watcher.start()
        time.sleep(0.5)
        writes = []
        rng = random.Random(7)
        for i in range(args.writes):
            path = root / "live" / f"w-{i % 20}.txt"
            path.write_bytes(os.urandom(rng.randint(100, 65536)))
            writes.append(time.time())
            time.sleep(rng.uniform(0.02, 0.3))
        deadline = time.time() + 60
        while time.time() < deadline and not (runs and runs[-1][0] > writes[-1]):
            time.sleep(0.1)
        watcher.stop()
        lags = []
        for written in writes:
            commit = next((c for s, c in sorted(runs) if s > written), None)
            if commit is None:
                sys.exit(f"a write at {written} was never snapshotted")
            lags.append(commit - written)
        lags.sort()
        p95 = lags[min(len(lags) - 1, int(0.95 * len(lags)))]
        print(f"{len(writes)} writes, {len(runs)} snapshots "
              f"(quiet {args.quiet}s, max delay {args.max_delay}s)")
        print(f"lag write -> committed snapshot: p50 {statistics.median(lags):.2f}s  p95 {p95:.2f}s  "
              f"max {lags[-1]:.2f}s")


if __name__ == "__main__":
    main()
