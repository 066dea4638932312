"""Issue 14's speed benchmark: drorch vs stock restic on both data-set shapes, in one run.

Run it from the repository root (drorch installed, ``restic`` and ``taskset`` on PATH)::

    python tests/bench/bench_speed.py                    # the issue's sizes (~1.2 GiB in all)
    python tests/bench/bench_speed.py --scale 0.1        # a quick smoke run (or BENCH_SCALE=0.1)
    python tests/bench/bench_speed.py --rounds 3 --check # best of 3; restic check --read-data

Data sets (deterministic; ``--scale`` multiplies every size and file count):

* ``mixed``: 4 x 100 MiB random, 4 x 100 MiB log text, 20,000 files of 1-8 KiB;
* ``one-large``: one 160 MiB random file, one 160 MiB log, 8,000 small files.

For each data set and round, drorch and restic run interleaved (the order alternates per
round), ``sync`` (untimed) before every step and nothing else dropped: first backup into
an empty repository, a no-change re-run, a restore into an empty directory (its
repository read once before, untimed, so that both restore from the page cache: drorch
writes packs bypassing it). Then the first backup again, pinned to one core (``taskset
-c 0``), to show whether anything serial caps it. Wall time, CPU seconds and peak RSS
come from ``wait4`` on each child, forked by a small launcher process (a child's peak
RSS would otherwise start at this script's own). The speed of cutting the largest file
into chunks is measured on one thread and on every core (a single large file must use
every core). Before the restores, the *restore floor* is measured: every file of the data
set written anew by one thread per core, no tool's work at all. In the same run the
*primitive pipeline* is measured: the data set read in
1 MiB pieces (small files whole) by one thread per core, each piece SHA-256 hashed,
zstd-3 compressed and AES-256-CTR encrypted -- the work a backup cannot avoid, in Python
with the same libraries drorch uses (the format also needs a Poly1305 MAC per blob and a
SHA-256 over each pack, which it leaves out, as issue 14 defines it; chunking, trees and
the index are left out too). Last, the start-up of ``drorch --help`` and ``drorch
validate``.

The table gives time ratios as drorch / restic (< 1: drorch faster) next to issue
14's goals, and the same ratio of CPU seconds (user + sys of the child). The
machine may be shared: the 1-minute load average is printed, and CPU seconds are
less sensitive to other load than wall time. The script never
asserts on time; it exits 1 only when a tool or a correctness check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import queue
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vs_restic import (  # noqa: E402  (a sibling script, not a package)
    MIB,
    PASSWORD,
    BenchError,
    Run,
    WorkDir,
    _log_line_pool,
    _policy_yaml,
    _write_random_file,
    _write_small_files,
    _write_text_file,
    assert_identical,
    drorch_program,
    launcher_floor_mib,
    run_checked,
    run_measured,
)

GIB = 1024 * MIB
SHAPES = {  # name -> (random files, text files, MiB per large file, small files)
    "mixed": (4, 4, 100, 20_000),
    "one-large": (1, 1, 160, 8_000),
}
STEPS = ("first backup", "no-change re-run", "restore")
GOALS = {"first backup": 0.40, "no-change re-run": 0.60, "restore": 0.45}  # drorch/restic <=
RSS_GOAL, PIPELINE_GOAL, SCALING_GOAL, STARTUP_GOAL_MS = 1.5, 1.3, 1.8, 150


# -- data ----------------------------------------------------------------------------------


@dataclass
class Data:
    name: str
    root: Path
    total_bytes: int = 0
    files: list[Path] = field(default_factory=list)


def generate(root: Path, shape: str, scale: float, seed: int) -> Data:
    n_random, n_text, mib, n_small = SHAPES[shape]
    size, small = max(MIB, int(mib * MIB * scale)), max(10, int(n_small * scale))
    rng = random.Random(seed)
    data = Data(shape, root)
    (root / "blobs").mkdir(parents=True)
    (root / "logs").mkdir()
    for i in range(n_random):
        _write_random_file(root / "blobs" / f"random-{i}.bin", size, rng)
    pool = _log_line_pool(rng, 50_000)
    for i in range(n_text):
        _write_text_file(root / "logs" / f"app-{i}.log", size, pool, rng)
    _write_small_files(root / "small", small, pool, rng)
    data.files = sorted(p for p in root.rglob("*") if p.is_file())
    data.total_bytes = sum(p.stat().st_size for p in data.files)
    return data


# -- the primitive pipeline ------------------------------------------------------------------


def on_threads(worker: Callable[[], None], threads: int) -> tuple[float, float]:
    """(wall s, CPU s of this process) for ``threads`` threads to each run ``worker`` to its end."""
    started, cpu = time.perf_counter(), time.process_time()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - started, time.process_time() - cpu


def primitive_pipeline(data: Data, threads: int) -> tuple[float, float]:
    """(wall s, CPU s) for ``threads`` threads to read, hash, compress and encrypt every byte."""
    import zstandard
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    work: queue.SimpleQueue[tuple[Path, int, int] | None] = queue.SimpleQueue()
    for path in data.files:
        size = path.stat().st_size
        for offset in range(0, max(size, 1), MIB):
            work.put((path, offset, min(MIB, size - offset)))
    for _ in range(threads):
        work.put(None)
    aes = algorithms.AES(os.urandom(32))

    def worker() -> None:
        cctx = zstandard.ZstdCompressor(level=3)
        while (item := work.get()) is not None:
            path, offset, length = item
            with open(path, "rb", buffering=0) as fh:
                fh.seek(offset)
                piece = fh.read(length)
            hashlib.sha256(piece).digest()
            packed = cctx.compress(piece)
            Cipher(aes, modes.CTR(os.urandom(16))).encryptor().update(packed)

    return on_threads(worker, threads)


def primitive_restore(data: Data, dest: Path, threads: int) -> tuple[float, float]:
    """(wall s, CPU s) for ``threads`` threads to write every file of the data set anew under
    ``dest``: each read from the page cache in 1 MiB pieces and written into a new file, no
    fsync, no metadata, the directories made before the clock starts. The floor under any
    restore on this machine -- a restore also decrypts, checks and decompresses -- so a
    restore goal below it is the kernel's, not the tool's. A thread takes whole files: on
    ``one-large`` one thread writes each 160 MiB file, so there it is a floor only for a
    restore that does the same (drorch and restic may split a large file)."""
    pieces: queue.SimpleQueue[tuple[Path, Path] | None] = queue.SimpleQueue()
    for path in data.files:
        target = dest / path.relative_to(data.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        pieces.put((path, target))
    for _ in range(threads):
        pieces.put(None)

    def worker() -> None:
        while (item := pieces.get()) is not None:
            source, target = item
            with open(source, "rb", buffering=0) as src, open(target, "wb", buffering=0) as out:
                while piece := src.read(MIB):
                    out.write(piece)

    os.sync()
    return on_threads(worker, threads)


def cutting_speed(data: Data, threads: int) -> tuple[float, float]:
    """MiB/s at which drorch cuts the data set's largest file into chunks: by one thread as it
    reads (``chunker.chunks``), and in segments on ``threads`` threads (``segments``), as a
    backup does for files from 128 MiB; page cache warm, the chunks not stored."""
    from concurrent.futures import ThreadPoolExecutor

    from drorch.archiver.chunker import chunks
    from drorch.archiver.segments import parallel_cuts

    path = max(data.files, key=lambda p: p.stat().st_size)
    size = path.stat().st_size
    started = time.perf_counter()
    with open(path, "rb", buffering=0) as stream:
        assert sum(len(chunk) for chunk in chunks(stream, size)) == size
    one = time.perf_counter() - started
    fd = os.open(path, os.O_RDONLY)
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            assert sum(length for _offset, length in parallel_cuts(fd, size, pool.submit, threads)) == size
        every = time.perf_counter() - started
    finally:
        os.close(fd)
    return size / MIB / one, size / MIB / every


# -- the tools ---------------------------------------------------------------------------------


class Tools:
    """argv and environment of both tools for one data set; ``pin`` prefixes taskset."""

    def __init__(self, work: Path, data: Data) -> None:
        self.work, self.data = work, data
        self.policy = work / "policy.yaml"
        self.env = {**os.environ, "DRORCH_KEY": PASSWORD, "RESTIC_PASSWORD": PASSWORD,
                    "DRORCH_HOME": str(work / "drorch-home"),
                    "RESTIC_CACHE_DIR": str(work / "restic-cache")}
        self.log = work / "bench.log"
        self.restores: dict[str, int] = {}  # per tool, how many restores so far

    def restored(self, tool: str) -> Path:
        """The directory of ``tool``'s latest restore."""
        return self.work / "restored" / f"{tool}-{self.restores.get(tool, 0)}"

    def repo(self, tool: str) -> Path:
        return self.work / f"{tool}-repo"

    def fresh(self, tool: str) -> None:
        """An empty repository (restic's init untimed; drorch inits inside its first apply)."""
        shutil.rmtree(self.repo(tool), ignore_errors=True)
        shutil.rmtree(self.work / "drorch-home", ignore_errors=True)
        shutil.rmtree(self.work / "restic-cache", ignore_errors=True)
        if tool == "restic":
            run_checked(["restic", "-r", str(self.repo(tool)), "init", "--repository-version", "2"],
                        self.env, self.log)
        else:
            self.policy.write_text(_policy_yaml(self.data.root, self.repo(tool)))

    def backup(self, tool: str, pin: bool = False) -> Run:
        prefix = ["taskset", "-c", "0"] if pin else []
        if tool == "drorch":
            argv = [drorch_program(), "apply", str(self.policy), "--quiet"]
        else:
            argv = ["restic", "-r", str(self.repo(tool)), "backup", "--quiet", str(self.data.root)]
        return run_measured(prefix + argv, self.env, self.log)

    def restore(self, tool: str) -> Run:
        """Into a new directory each time; the earlier ones stay until the data set is done.

        Deleting the last restore's 20,000 files just before would time the kernel, not
        the tools: ext4 keeps inodes deleted in the last ~30 s out of reuse, and each new
        inode scans past them (``recently_deleted``). Measured here: 20,000 empty files
        took 5-7 s to create right after such a delete, and 0.2 s otherwise.
        """
        self.restores[tool] = self.restores.get(tool, 0) + 1
        dest = self.restored(tool)
        if tool == "drorch":
            argv = [drorch_program(), "restore", str(self.policy), "latest", "--to", str(dest),
                    "--quiet"]
        else:
            argv = ["restic", "-r", str(self.repo(tool)), "restore", "latest", "--target", str(dest)]
        warm(self.repo(tool))
        return run_measured(argv, self.env, self.log)


def warm(root: Path) -> None:
    """Read every file under ``root`` once (untimed), so that a restore reads its repository
    from the page cache, as the issue's rule has it, whichever way the tool wrote it:
    drorch writes packs with O_DIRECT (they are fsynced anyway), restic through the cache."""
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb", buffering=0) as file:
                while file.read(1 << 20):
                    pass
    os.sync()


# -- results -----------------------------------------------------------------------------------


@dataclass
class Result:
    """Every run of every (step, tool), kept so the report can show best and spread."""

    data: Data
    runs: dict[tuple[str, str], list[Run]] = field(default_factory=dict)
    pipeline: list[tuple[float, float]] = field(default_factory=list)  # (wall, CPU)
    cutting: list[tuple[float, float]] = field(default_factory=list)  # MiB/s: 1 thread, every core
    restore_floor: list[tuple[float, float]] = field(default_factory=list)  # (wall, CPU)

    def add(self, step: str, tool: str, run: Run) -> None:
        self.runs.setdefault((step, tool), []).append(run)
        print(f"  {self.data.name:<9} {step:<18} {tool:<6} {run.seconds:7.2f}s  "
              f"CPU {run.cpu_user + run.cpu_sys:6.2f}s  RSS {run.peak_rss_mib:6.1f} MiB", flush=True)

    def best(self, step: str, tool: str) -> Run:
        return min(self.runs[(step, tool)], key=lambda r: r.seconds)

    def spread(self, step: str, tool: str) -> str:
        times = [r.seconds for r in self.runs[(step, tool)]]
        return f"{min(times):.2f}-{max(times):.2f}" if len(times) > 1 else ""


def run_round(tools: Tools, result: Result, order: list[str], pin_tools: list[str],
              threads: int) -> None:
    for tool in order:
        tools.fresh(tool)
    for step in STEPS:
        if step == "restore":  # just before the tools', into a directory of its own (see restore)
            floor = tools.work / "restored" / f"floor-{len(result.restore_floor)}"
            result.restore_floor.append(primitive_restore(tools.data, floor, threads))
        for tool in order:
            run = tools.restore(tool) if step == "restore" else tools.backup(tool)
            result.add(step, tool, run)
    for tool in pin_tools:
        tools.fresh(tool)
        result.add("first backup 1 core", tool, tools.backup(tool, pin=True))
        tools.fresh(tool)
        result.add("first backup 2 cores", tool, tools.backup(tool))


def measure_startup(work: Path, tools: Tools, repeat: int = 7) -> dict[str, list[Run]]:
    """Wall time and CPU of ``drorch --help`` and ``drorch validate``, interleaved."""
    runs: dict[str, list[Run]] = {"--help": [], "validate": []}
    argvs = {"--help": [drorch_program(), "--help"],
             "validate": [drorch_program(), "validate", str(tools.policy)]}
    for _ in range(repeat):
        for name, argv in argvs.items():
            runs[name].append(run_measured(argv, tools.env, tools.log))
    return runs


def check(tools: Tools, read_data: bool) -> None:
    assert_identical(tools.data.root, tools.restored("drorch"))
    argv = ["restic", "-r", str(tools.repo("drorch")), "check", "--no-cache"]
    run_checked(argv + (["--read-data"] if read_data else []), tools.env, tools.log)
    print(f"  {tools.data.name}: drorch restore identical; restic check"
          f"{' --read-data' if read_data else ''} clean on drorch's repository", flush=True)


# -- report ------------------------------------------------------------------------------------


def _gib(result: Result) -> float:
    return result.data.total_bytes / GIB


def _cpu(run: Run) -> float:
    return run.cpu_user + run.cpu_sys


def render(results: list[Result], startup: dict[str, list[Run]], threads: int) -> str:
    head = (f"{'data set':<10} {'step':<17} {'drorch s':>8} {'restic s':>8} {'ratio':>6} {'goal':>6} "
            f"{'CPU ratio':>9} "
            f"{'CPU s/GiB d':>11} {'CPU s/GiB r':>11} {'RSS MiB d':>9} {'RSS MiB r':>9} "
            f"{'RSS ratio':>9}  spread drorch / restic")
    lines = [head, "-" * len(head)]
    for res in results:
        for step in STEPS:
            d, r = res.best(step, "drorch"), res.best(step, "restic")
            ratio, rss = d.seconds / r.seconds, d.peak_rss_kib / r.peak_rss_kib
            lines.append(
                f"{res.data.name:<10} {step:<17} {d.seconds:>8.2f} {r.seconds:>8.2f} {ratio:>5.2f}x "
                f"{GOALS[step]:>5.2f}x {_cpu(d) / _cpu(r):>8.2f}x "
                f"{_cpu(d) / _gib(res):>11.2f} {_cpu(r) / _gib(res):>11.2f} "
                f"{d.peak_rss_mib:>9.1f} {r.peak_rss_mib:>9.1f} {rss:>8.2f}x  "
                f"{res.spread(step, 'drorch')} / {res.spread(step, 'restic')}"
                + ("" if ratio <= GOALS[step] else "  MISSED") + ("" if rss <= RSS_GOAL else " RSS MISSED"))
    lines.append("")
    for res in results:
        pipe, pipe_cpu = min(res.pipeline)
        first = res.best("first backup", "drorch")
        lines.append(f"{res.data.name:<10} primitive pipeline ({threads} threads) {pipe:.2f}s "
                     f"({res.data.total_bytes / MIB / pipe:.0f} MiB/s, CPU {pipe_cpu:.2f}s); drorch first "
                     f"backup / pipeline = {first.seconds / pipe:.2f}x wall, {_cpu(first) / pipe_cpu:.2f}x "
                     f"CPU (goal <= {PIPELINE_GOAL}x)")
        floor, floor_cpu = min(res.restore_floor)
        restic_restore = res.best("restore", "restic").seconds
        lines.append(f"{res.data.name:<10} restore floor ({threads} threads write every file anew) "
                     f"{floor:.2f}s (CPU {floor_cpu:.2f}s) = {floor / restic_restore:.2f}x restic's "
                     f"restore (goal {GOALS['restore']:.2f}x); drorch restore / floor = "
                     f"{res.best('restore', 'drorch').seconds / floor:.2f}x")
        restic_first = res.best("first backup", "restic").seconds
        lines.append(f"{res.data.name:<10} first-backup goal {GOALS['first backup']:.2f}x restic = "
                     f"{GOALS['first backup'] * restic_first:.2f}s = "
                     f"{GOALS['first backup'] * restic_first / pipe:.2f}x the primitive pipeline")
        one_thread, every_core = max(res.cutting, key=lambda speeds: speeds[1])
        lines.append(f"{res.data.name:<10} cutting its largest file: 1 thread {one_thread:.0f} MiB/s, "
                     f"{threads} threads {every_core:.0f} MiB/s ({every_core / one_thread:.2f}x)")
        for tool in ("drorch", "restic"):
            if ("first backup 1 core", tool) in res.runs:
                one, two = res.best("first backup 1 core", tool), res.best("first backup 2 cores", tool)
                lines.append(f"{res.data.name:<10} {tool} first backup 1 core {one.seconds:.2f}s, "
                             f"2 cores {two.seconds:.2f}s: scaling {one.seconds / two.seconds:.2f}x "
                             f"(goal >= {SCALING_GOAL}x); CPU {_cpu(one):.2f}s vs {_cpu(two):.2f}s")
    lines.append("")
    for name, runs in startup.items():
        times = [r.seconds * 1000 for r in runs]
        lines.append(f"startup drorch {name:<9} best {min(times):6.0f} ms, median "
                     f"{statistics.median(times):6.0f} ms wall; CPU best "
                     f"{min(_cpu(r) for r in runs) * 1000:4.0f} ms (goal <= {STARTUP_GOAL_MS} ms)")
    return "\n".join(lines)


# -- entry point ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", "1")),
                        help="multiply every size and file count (default $BENCH_SCALE or 1)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated data sets")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; best run kept")
    parser.add_argument("--no-scaling", action="store_true", help="skip the 1-core vs 2-core runs")
    parser.add_argument("--scaling-restic", action="store_true", help="also pin restic to 1 core")
    parser.add_argument("--check", action="store_true", help="restic check --read-data afterwards")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--workdir", type=Path, help="empty or missing directory (default: /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir afterwards")
    return parser.parse_args(argv)


def compile_bytecode() -> None:
    """Write drorch's .pyc files, as installing a wheel does: an editable install under
    PYTHONDONTWRITEBYTECODE=1 (this machine's default) would recompile ~100 modules on
    every start, about 0.15 s that no installed drorch pays."""
    import drorch

    packages = [Path(drorch.__file__).parent, Path(drorch.__file__).parent.parent / "providers"]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *map(str, filter(Path.is_dir, packages))],
                   check=True)
    print("drorch bytecode compiled (as a wheel install does)", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads = os.cpu_count() or 2
    pin_tools = [] if args.no_scaling else ["drorch"] + (["restic"] if args.scaling_restic else [])
    results: list[Result] = []
    startup: dict[str, list[Run]] = {}
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.2f} on {threads} cores", flush=True)
    compile_bytecode()
    try:
        with WorkDir.make(args.workdir, args.keep) as work:
            for shape in args.shapes.split(","):
                data = generate(work / shape / "data", shape, args.scale, args.seed)
                print(f"{shape}: {len(data.files)} files, {data.total_bytes / MIB:.0f} MiB", flush=True)
                tools, result = Tools(work / shape, data), Result(data)
                for round_no in range(args.rounds):
                    order = ["drorch", "restic"] if round_no % 2 == 0 else ["restic", "drorch"]
                    os.sync()
                    result.pipeline.append(primitive_pipeline(data, threads))
                    result.cutting.append(cutting_speed(data, threads))
                    run_round(tools, result, order, pin_tools, threads)
                check(tools, args.check)
                results.append(result)
                if not startup:
                    startup = measure_startup(work, tools)
                shutil.rmtree(work / shape, ignore_errors=True)
    except (BenchError, subprocess.CalledProcessError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"\nload average (1 min) at end: {os.getloadavg()[0]:.2f}; scale {args.scale}; "
          f"rounds {args.rounds}; ratio = drorch s / restic s (< 1: drorch faster); every peak RSS "
          f"includes the {launcher_floor_mib():.1f} MiB of the process that forks the tools\n")
    print(render(results, startup, threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
