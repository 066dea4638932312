"""Benchmark drorch against the stock restic binary on the same mixed data set.

Run it from the repository root (drorch installed, ``restic`` on PATH)::

    python tests/bench/bench_vs_restic.py                    # ~1 GiB, work dir under /tmp
    python tests/bench/bench_vs_restic.py --size-mib 128     # quick smoke run
    python tests/bench/bench_vs_restic.py --workdir /data/b --keep --json out.json
    python tests/bench/bench_vs_restic.py --rounds 3         # best of 3, for a busy machine

What it does, in one run and on one machine:

1. Generates a deterministic (``--seed``) mixed data set: ~40% incompressible random
   data in 4 large files, ~40% compressible log-like text in 4 large files, and
   ``--small-files`` (default 20,000) files of 1-8 KiB in nested directories.
   ``--size-mib`` scales the two large parts; the small-file count does not change.
2. For drorch (its CLI, a generated policy, ``--quiet``) and for restic (``init``,
   ``backup``, ``restore latest --target``), with the same password, times:
   (a) the first backup into an empty repository, (b) a re-run with nothing
   changed, (c) a re-run after 1% of one large random file was overwritten in place
   (a contiguous region in the middle), (d) a full restore of the latest snapshot
   into an empty directory.
3. Records the wall time, CPU time and peak RSS of every child process (``os.wait4``,
   in a small launcher process: see ``run_measured``).
4. Checks correctness on the way (untimed): drorch's restore is byte-identical to
   the source (``diff -r``), and ``restic check`` passes on drorch's repository.
5. Prints one table (seconds, MiB/s, peak RSS and ratios per step), the CPU
   seconds per step, the repository sizes after (a) and the bytes each repository
   grew by in (b) and (c); ``--json FILE`` writes the same numbers.

The page cache cannot be dropped here, so nothing is cold: each tool's first
backup runs right after the data set was written and the other tool's backup, so
both read from a warm cache. ``sync`` runs (untimed) before every timed step so
no tool pays for the other's writeback. ``--rounds N`` repeats (a)-(d) on fresh
repositories, alternating which tool goes first, and keeps each tool's fastest
run per step (and its highest peak RSS). The 1-minute load average is printed:
on a shared 2-core machine other work skews wall times, CPU seconds less so.
Numbers are for comparing the two tools on this machine, never absolute, and the
script never asserts on time. It exits 1 only when a tool fails or a correctness
check fails.

Goals drorch is measured against (reported, not enforced):

* first backup and restore: drorch throughput >= restic's (time ratio >= 1);
* no-change re-run: drorch no slower than restic (time ratio >= 1);
* peak RSS: drorch <= 2x restic on every step (RSS ratio <= 2).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

MIB = 1024 * 1024
PASSWORD = "drorch-bench-password-0123456789"  # same for both tools
MIRROR = "bench"
STEPS = ("first backup", "no-change re-run", "1% change re-run", "full restore")
GOALS = {  # step -> minimal time ratio restic/drorch; reported only
    "first backup": 1.0,
    "no-change re-run": 1.0,
    "full restore": 1.0,
}
MAX_RSS_RATIO = 2.0


# -- data set -------------------------------------------------------------------------------


@dataclass
class Dataset:
    root: Path
    random_files: list[Path]
    text_files: list[Path]
    small_files: int
    random_bytes: int = 0
    text_bytes: int = 0
    small_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return self.random_bytes + self.text_bytes + self.small_bytes

    def describe(self) -> str:
        return (f"{len(self.random_files)} random files {self.random_bytes / MIB:.0f} MiB, "
                f"{len(self.text_files)} log files {self.text_bytes / MIB:.0f} MiB, "
                f"{self.small_files} small files {self.small_bytes / MIB:.0f} MiB; "
                f"total {self.total_bytes / MIB:.0f} MiB")


_LEVELS = ("INFO", "INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR")
_SERVICES = ("api", "auth", "billing", "cart", "search", "worker", "gateway", "db-proxy")
_MESSAGES = (
    "GET /api/v1/orders/{id} 200 {ms}ms bytes={n}",
    "POST /api/v1/cart/{id}/items 201 {ms}ms bytes={n}",
    "user {id} logged in from 10.{a}.{b}.{c} session={hex}",
    "cache miss key=product:{id} fallback=db latency={ms}ms",
    "retrying upstream call attempt={a} backoff={ms}ms request_id={hex}",
    "slow query took {ms}ms: SELECT * FROM orders WHERE customer_id = {id}",
    "job {hex} finished status=ok processed={n} duration={ms}ms",
    "connection pool stats active={a} idle={b} waiting={c}",
    "payment {hex} authorised amount={n} currency=EUR customer={id}",
    "worker heartbeat queue=default depth={n} lag={ms}ms",
)


def _log_line_pool(rng: random.Random, count: int) -> list[bytes]:
    """Distinct log lines to sample from; sampling keeps generation fast and the text varied."""
    base = 1_700_000_000
    pool = []
    for _ in range(count):
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + rng.randrange(86_400 * 30)))
        message = rng.choice(_MESSAGES).format(
            id=rng.randrange(10**7), ms=rng.randrange(1, 5000), n=rng.randrange(10**6),
            a=rng.randrange(256), b=rng.randrange(256), c=rng.randrange(256),
            hex=f"{rng.getrandbits(64):016x}")
        line = (f"{ts}.{rng.randrange(1000):03d}Z {rng.choice(_LEVELS):5} "
                f"[{rng.choice(_SERVICES)}] pid={rng.randrange(1, 65536)} {message}\n")
        pool.append(line.encode())
    return pool


def _write_random_file(path: Path, size: int, rng: random.Random) -> None:
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 16 * MIB)
            fh.write(rng.randbytes(n))
            left -= n


def _write_text_file(path: Path, size: int, pool: list[bytes], rng: random.Random) -> None:
    """Blocks of lines sampled from the pool; every block differs, so nothing dedups."""
    avg_line = sum(map(len, pool[:1000])) // 1000
    with open(path, "wb") as fh:
        written = 0
        while written < size:
            block = b"".join(rng.choices(pool, k=MIB // avg_line))[: size - written]
            fh.write(block)
            written += len(block)


def _write_small_files(root: Path, count: int, pool: list[bytes], rng: random.Random) -> int:
    """``count`` files of 1-8 KiB, half random and half text, 10 per leaf directory."""
    noise = rng.randbytes(4 * MIB)
    text = b"".join(rng.choices(pool, k=40_000))
    total = 0
    for i in range(count):
        folder = root / f"d{i // 1000:02d}" / f"s{(i // 100) % 10}" / f"t{(i // 10) % 10}"
        if i % 10 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        size = rng.randrange(1024, 8 * 1024 + 1)
        source = noise if i % 2 else text
        start = rng.randrange(len(source) - size)
        suffix = "bin" if i % 2 else "txt"
        (folder / f"f{i:05d}.{suffix}").write_bytes(source[start : start + size])
        total += size
    return total


def generate_dataset(root: Path, size_mib: int, small_files: int, seed: int) -> Dataset:
    rng = random.Random(seed)
    big_bytes = size_mib * MIB * 2 // 5  # 40% each for random and text
    per_file = big_bytes // 4
    data = Dataset(root, [root / "blobs" / f"random-{i}.bin" for i in range(4)],
                   [root / "logs" / f"app-{i}.log" for i in range(4)], small_files)
    for folder in (root / "blobs", root / "logs", root / "small"):
        folder.mkdir(parents=True, exist_ok=True)
    for path in data.random_files:
        _write_random_file(path, per_file, rng)
        data.random_bytes += per_file
    pool = _log_line_pool(rng, 50_000)
    for path in data.text_files:
        _write_text_file(path, per_file, pool, rng)
        data.text_bytes += per_file
    data.small_bytes = _write_small_files(root / "small", small_files, pool, rng)
    return data


def overwrite_middle(path: Path, fraction: float, seed: int) -> int:
    """Overwrite a contiguous ``fraction`` of the file in place, centred; returns bytes written."""
    size = path.stat().st_size
    length = max(1, int(size * fraction))
    with open(path, "r+b") as fh:
        fh.seek(size // 2 - length // 2)
        fh.write(random.Random(seed).randbytes(length))
    return length


# -- running and measuring children ---------------------------------------------------------


class BenchError(Exception):
    """A tool failed or a correctness check did not pass."""


@dataclass
class Run:
    seconds: float
    peak_rss_kib: int
    cpu_user: float = 0.0
    cpu_sys: float = 0.0

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss_kib / 1024


def run_measured(argv: list[str], env: dict[str, str], log: Path) -> Run:
    """Run a child to completion; its wall time, peak RSS (ru_maxrss from wait4) and CPU.

    Dirty pages are flushed first (untimed), so no child pays for writeback of
    what the previous one wrote. The child is forked by a small launcher process
    (``_Launcher``), not by this one: a child's ru_maxrss starts at the RSS of the
    process it was forked from (Linux records the old memory's peak at exec), so
    children forked from this bench, which holds a data set's worth of buffers,
    all reported at least its 115-150 MiB, restic's small peaks included.
    """
    os.sync()
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
    seconds, code, rss_kib, user, system = _Launcher.shared().run(argv, env, log)
    if code != 0:
        raise BenchError(f"{argv[0]} exited {code}; see {log}:\n{_tail(log)}")
    return Run(seconds, rss_kib, user, system)


class _Launcher:
    """A Python process of ~10 MiB that forks, times and reaps each measured child: every
    peak RSS includes that floor (``floor_kib``, its resident memory), never this bench's."""

    _CODE = r"""
import json, os, sys, time
with open("/proc/self/statm") as statm:  # resident now: what each child starts from (not ru_maxrss,
    print(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024, flush=True)  # inherited)
for line in sys.stdin:
    argv, env, log = json.loads(line)
    out, null = os.open(log, os.O_WRONLY | os.O_APPEND), os.open(os.devnull, os.O_RDONLY)
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.dup2(null, 0); os.dup2(out, 1); os.dup2(out, 2)
        try:
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    os.close(out); os.close(null)
    print(json.dumps([seconds, os.waitstatus_to_exitcode(status), usage.ru_maxrss,
                      usage.ru_utime, usage.ru_stime]), flush=True)
"""
    _shared: _Launcher | None = None

    def __init__(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-c", self._CODE], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        self.floor_kib = int(self._proc.stdout.readline())

    @classmethod
    def shared(cls) -> _Launcher:
        if cls._shared is None or cls._shared._proc.poll() is not None:
            cls._shared = cls()
        return cls._shared

    def run(self, argv: list[str], env: dict[str, str], log: Path) -> tuple[float, int, int, float, float]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps([argv, env, str(log)]) + "\n")
        self._proc.stdin.flush()
        seconds, code, rss_kib, user, system = json.loads(self._proc.stdout.readline())
        return seconds, code, rss_kib, user, system


def launcher_floor_mib() -> float:
    """The launcher's own RSS, which every measured peak RSS includes."""
    return _Launcher.shared().floor_kib / 1024


def run_checked(argv: list[str], env: dict[str, str], log: Path) -> subprocess.CompletedProcess[str]:
    """Run an untimed helper command; raises with its output when it fails."""
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}")
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}:\n"
                         f"{(done.stdout + done.stderr)[-3000:]}")
    return done


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def tree_size(path: Path) -> int:
    """Bytes of every regular file below ``path``."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


# -- the two tools --------------------------------------------------------------------------


class Tool:
    """One backup program with a repository inside the work dir."""

    name = ""

    def __init__(self, work: Path, source: Path) -> None:
        self.work = work
        self.source = source
        self.repo = work / f"{self.name}-repo"
        self.log = work / f"{self.name}.log"

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def init(self) -> None:
        """Prepare an empty repository (untimed where the tool has a separate step)."""

    def backup(self) -> Run:
        raise NotImplementedError

    def restore(self, dest: Path) -> Run:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError


class Drorch(Tool):
    name = "drorch"

    def __init__(self, work: Path, source: Path) -> None:
        super().__init__(work, source)
        self.policy = work / "bench-policy.yaml"

    def env(self) -> dict[str, str]:
        return {**os.environ, "DRORCH_KEY": PASSWORD, "DRORCH_HOME": str(self.work / "drorch-home")}

    def init(self) -> None:
        """drorch creates the repository on the first apply, inside the timed step."""
        self.policy.write_text(_policy_yaml(self.source, self.repo))
        run_checked([drorch_program(), "validate", str(self.policy)], self.env(), self.log)

    def backup(self) -> Run:
        return run_measured([drorch_program(), "apply", str(self.policy), "--quiet"], self.env(), self.log)

    def restore(self, dest: Path) -> Run:
        return run_measured([drorch_program(), "restore", str(self.policy), "latest", "--to", str(dest),
                             "--quiet"], self.env(), self.log)

    def version(self) -> str:
        from importlib.metadata import version

        return f"drorch {version('drorch')}"


class Restic(Tool):
    name = "restic"

    def env(self) -> dict[str, str]:
        return {**os.environ, "RESTIC_PASSWORD": PASSWORD,
                "RESTIC_CACHE_DIR": str(self.work / "restic-cache")}

    def init(self) -> None:
        run_checked(["restic", "-r", str(self.repo), "init", "--repository-version", "2"],
                    self.env(), self.log)

    def backup(self) -> Run:
        return run_measured(["restic", "-r", str(self.repo), "backup", "--quiet",
                             str(self.source)], self.env(), self.log)

    def restore(self, dest: Path) -> Run:
        return run_measured(["restic", "-r", str(self.repo), "restore", "latest", "--target",
                             str(dest)], self.env(), self.log)

    def version(self) -> str:
        return run_checked(["restic", "version"], self.env(), self.log).stdout.strip()

    def check(self, repo: Path, read_data: bool) -> None:
        """``restic check`` on any repository with the shared password (drorch's, here)."""
        argv = ["restic", "-r", str(repo), "check", "--no-cache"]
        run_checked(argv + (["--read-data"] if read_data else []), self.env(), self.log)


def drorch_program() -> str:
    """The ``drorch`` script of the running interpreter, else the one on PATH.

    Preferring the script beside ``sys.executable`` skips wrapper shims (pyenv's
    costs ~0.1 s a call) and benchmarks the drorch this interpreter imports.
    """
    beside = Path(sys.executable).parent / "drorch"
    return str(beside) if beside.is_file() else shutil.which("drorch") or "drorch"


def _policy_yaml(source: Path, repo: Path) -> str:
    q = json.dumps  # a JSON string is a valid YAML double-quoted scalar
    return f"""\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata:
  name: bench
encryption:
  key: env:DRORCH_KEY
sources:
  - name: bench-data
    type: directory
    path: {q(str(source))}
targets:
  - name: local
    url: {q("file://" + str(repo))}
mirrors:
  - name: {MIRROR}
    source: bench-data
    targets: [local]
    mode: sync
    rpo: 1h
"""


# -- correctness ----------------------------------------------------------------------------


def assert_identical(source: Path, restored: Path) -> None:
    """Byte-for-byte comparison of two trees (contents and names, not metadata)."""
    done = subprocess.run(["diff", "-r", "-q", "--no-dereference", str(source), str(restored)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"restore of {restored} differs from {source}:\n"
                         f"{(done.stdout + done.stderr)[:3000]}")


# -- the benchmark --------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    data_bytes: int  # logical bytes the step covers; throughput = data_bytes / seconds
    runs: dict[str, Run] = field(default_factory=dict)

    def time_ratio(self) -> float:
        """restic seconds / drorch seconds: > 1 means drorch was faster."""
        return self.runs["restic"].seconds / self.runs["drorch"].seconds

    def rss_ratio(self) -> float:
        """drorch peak RSS / restic peak RSS: the goal is <= 2."""
        return self.runs["drorch"].peak_rss_kib / self.runs["restic"].peak_rss_kib

    def merge(self, other: Step) -> None:
        """Keep each tool's fastest run, with the highest peak RSS seen in any round."""
        for tool, run in other.runs.items():
            mine = self.runs[tool]
            best = run if run.seconds < mine.seconds else mine
            self.runs[tool] = Run(best.seconds, max(run.peak_rss_kib, mine.peak_rss_kib),
                                  best.cpu_user, best.cpu_sys)


@dataclass
class Report:
    dataset: str
    data_bytes: int
    versions: dict[str, str]
    rounds: int = 0
    steps: list[Step] = field(default_factory=list)
    repo_bytes: dict[str, dict[str, int]] = field(default_factory=dict)  # tool -> step -> size
    checks: list[str] = field(default_factory=list)
    load_before: float = 0.0  # 1-minute load average when the timed steps started
    load_after: float = 0.0

    def repo_growth(self, tool: str, step: str) -> int:
        order = list(self.repo_bytes[tool])
        before = self.repo_bytes[tool][order[order.index(step) - 1]] if order.index(step) else 0
        return self.repo_bytes[tool][step] - before

    def add_round(self, steps: list[Step], repo_bytes: dict[str, dict[str, int]]) -> None:
        if self.steps:
            for mine, theirs in zip(self.steps, steps, strict=True):
                mine.merge(theirs)
        else:
            self.steps = steps
            # Sizes from round 1 only: later rounds back up files whose atime the
            # earlier reads already moved, which hides tree churn caused by atime.
            self.repo_bytes = repo_bytes
        self.rounds += 1


def run_round(tools: list[Tool], dataset: Dataset, work: Path, seed: int
              ) -> tuple[list[Step], dict[str, dict[str, int]]]:
    """Steps (a)-(d) for every tool, in the order given, on fresh repositories."""
    steps: list[Step] = []
    repo_bytes: dict[str, dict[str, int]] = {tool.name: {} for tool in tools}
    for tool in tools:
        shutil.rmtree(tool.repo, ignore_errors=True)
        shutil.rmtree(work / f"{tool.name}-restore", ignore_errors=True)
        tool.init()

    def backups(step_name: str) -> None:
        step = Step(step_name, dataset.total_bytes)
        for tool in tools:
            step.runs[tool.name] = tool.backup()
            repo_bytes[tool.name][step_name] = tree_size(tool.repo)
            _progress(step_name, tool.name, step.runs[tool.name])
        steps.append(step)

    backups(STEPS[0])
    backups(STEPS[1])
    changed = overwrite_middle(dataset.random_files[0], 0.01, seed)
    print(f"overwrote {changed / MIB:.1f} MiB in the middle of {dataset.random_files[0].name}",
          flush=True)
    backups(STEPS[2])

    restore = Step(STEPS[3], dataset.total_bytes)
    for tool in tools:
        restore.runs[tool.name] = tool.restore(work / f"{tool.name}-restore")
        _progress(STEPS[3], tool.name, restore.runs[tool.name])
    steps.append(restore)
    return steps, repo_bytes


def check_correctness(work: Path, source: Path, restic: Restic, read_data: bool) -> list[str]:
    """Untimed: drorch restored every byte, and restic accepts drorch's repository."""
    assert_identical(source, work / "drorch-restore")
    restic.check(work / "drorch-repo", read_data)
    return ["drorch restore is byte-identical to the source (diff -r)",
            "restic check" + (" --read-data" if read_data else "") + " passes on drorch's repository"]


def run_benchmark(args: argparse.Namespace, work: Path) -> Report:
    source = work / "data"
    print(f"work dir: {work}", flush=True)
    t0 = time.perf_counter()
    dataset = generate_dataset(source, args.size_mib, args.small_files, args.seed)
    print(f"data set ({time.perf_counter() - t0:.1f}s to write): {dataset.describe()}", flush=True)
    restic = Restic(work, source)
    tools: list[Tool] = [Drorch(work, source), restic]
    report = Report(dataset.describe(), dataset.total_bytes, {t.name: t.version() for t in tools})
    report.load_before = os.getloadavg()[0]
    for round_no in range(args.rounds):
        if args.rounds > 1:
            print(f"round {round_no + 1} of {args.rounds}", flush=True)
        order = tools if round_no % 2 == 0 else tools[::-1]  # odd rounds: restic runs first
        report.add_round(*run_round(order, dataset, work, args.seed + 1 + round_no))
        report.load_after = os.getloadavg()[0]
        report.checks = check_correctness(work, source, restic, args.check_read_data)
    return report


def _progress(step: str, tool: str, run: Run) -> None:
    print(f"  {step:<18} {tool:<7} {run.seconds:8.2f}s  peak RSS {run.peak_rss_mib:7.1f} MiB  "
          f"CPU {run.cpu_user:.2f} user + {run.cpu_sys:.2f} sys", flush=True)


# -- output ---------------------------------------------------------------------------------


def render(report: Report) -> str:
    lines = [
        f"data set: {report.dataset}",
        f"rounds: {report.rounds}" + (" (fastest run per tool and step; highest peak RSS; "
                                      "rounds alternate which tool runs first)"
                                      if report.rounds > 1 else ""),
        f"tools: {report.versions['drorch']}; {report.versions['restic']}",
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}",
        "note: the page cache cannot be dropped; every step reads warm data for both tools "
        "(sync before each step)",
        f"load average (1 min) before/after the timed steps: {report.load_before:.2f} / "
        f"{report.load_after:.2f}" + (" -- other processes competed for CPU; times are noisy"
                                       if max(report.load_before, report.load_after) > 0.7 else ""),
        "time ratio = restic s / drorch s (>1: drorch faster); "
        "RSS ratio = drorch / restic (goal <= 2)",
        "",
    ]
    header = (f"{'step':<18} {'drorch s':>9} {'restic s':>9} {'ratio':>6} "
              f"{'drorch MiB/s':>12} {'restic MiB/s':>12} {'drorch RSS':>10} "
              f"{'restic RSS':>10} {'RSS ratio':>9}  goals")
    lines += [header, "-" * len(header)]
    for step in report.steps:
        d, r = step.runs["drorch"], step.runs["restic"]
        mib = step.data_bytes / MIB
        lines.append(
            f"{step.name:<18} {d.seconds:>9.2f} {r.seconds:>9.2f} {step.time_ratio():>6.2f} "
            f"{mib / d.seconds:>12.1f} {mib / r.seconds:>12.1f} {d.peak_rss_mib:>10.1f} "
            f"{r.peak_rss_mib:>10.1f} {step.rss_ratio():>9.2f}  {_goal_notes(step)}")
    lines += ["", _cpu_table(report), "",
              "repository bytes (round 1; all files below the repository directory):"]
    for tool in ("drorch", "restic"):
        after_first = report.repo_bytes[tool][STEPS[0]]
        lines.append(
            f"  {tool:<7} after first backup {after_first / MIB:9.1f} MiB "
            f"({after_first / report.data_bytes:.1%} of the data); "
            f"added by no-change re-run {report.repo_growth(tool, STEPS[1]) / 1024:8.1f} KiB; "
            f"added by 1% change re-run {report.repo_growth(tool, STEPS[2]) / MIB:6.2f} MiB")
    lines += ["", "correctness:"] + [f"  ok: {check}" for check in report.checks]
    return "\n".join(lines)


def _cpu_table(report: Report) -> str:
    """CPU seconds (user + sys) per step: less sensitive than wall time to other load."""
    lines = [f"{'CPU seconds':<18} {'drorch user':>11} {'drorch sys':>10} {'drorch %CPU':>11} "
             f"{'restic user':>11} {'restic sys':>10} {'restic %CPU':>11}"]
    for step in report.steps:
        cells = []
        for run in (step.runs["drorch"], step.runs["restic"]):
            busy = 100 * (run.cpu_user + run.cpu_sys) / run.seconds
            cells.append(f"{run.cpu_user:>11.2f} {run.cpu_sys:>10.2f} {busy:>10.0f}%")
        lines.append(f"{step.name:<18} {' '.join(cells)}")
    return "\n".join(lines)


def _goal_notes(step: Step) -> str:
    notes = []
    if step.name in GOALS:
        notes.append("time ok" if step.time_ratio() >= GOALS[step.name] else "TIME MISSED")
    notes.append("rss ok" if step.rss_ratio() <= MAX_RSS_RATIO else "RSS MISSED")
    return ", ".join(notes)


def to_json(report: Report) -> dict[str, object]:
    doc = asdict(report)
    for step_doc, step in zip(doc["steps"], report.steps, strict=True):
        step_doc["time_ratio_restic_over_drorch"] = step.time_ratio()
        step_doc["rss_ratio_drorch_over_restic"] = step.rss_ratio()
    doc["repo_growth"] = {tool: {s: report.repo_growth(tool, s) for s in report.repo_bytes[tool]}
                          for tool in report.repo_bytes}
    return doc


# -- entry point ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024,
                        help="size of the large files together (default 1024: ~1 GiB)")
    parser.add_argument("--small-files", type=int, default=20_000,
                        help="number of 1-8 KiB files (default 20000)")
    parser.add_argument("--seed", type=int, default=20240601, help="data set seed")
    parser.add_argument("--workdir", type=Path,
                        help="empty or missing directory to work in (default: a new one in /tmp)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat steps (a)-(d) on fresh repositories; report each tool's "
                        "fastest run per step and its highest peak RSS (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir afterwards")
    parser.add_argument("--json", type=Path, dest="json_out", help="also write results here")
    parser.add_argument("--check-read-data", action="store_true",
                        help="run `restic check --read-data` on drorch's repository (slower)")
    args = parser.parse_args(argv)
    if args.size_mib < 4 or args.small_files < 10 or args.rounds < 1:
        parser.error("--size-mib must be >= 4, --small-files >= 10 and --rounds >= 1")
    return args


@dataclass
class WorkDir:
    path: Path
    keep: bool

    @classmethod
    def make(cls, wanted: Path | None, keep: bool) -> WorkDir:
        if wanted is None:
            return cls(Path(tempfile.mkdtemp(prefix="drorch-bench-", dir="/tmp")), keep)
        wanted = wanted.resolve()
        if wanted.exists() and any(wanted.iterdir()):
            raise BenchError(f"--workdir {wanted} is not empty; give an empty or new directory")
        wanted.mkdir(parents=True, exist_ok=True)
        return cls(wanted, keep)

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if self.keep or exc_type is not None:
            print(f"kept work dir {self.path}" + (" for inspection" if exc_type else ""),
                  file=sys.stderr)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def _require_tools() -> Iterator[str]:
    for program in (drorch_program(), "restic", "diff"):
        if shutil.which(program) is None:
            yield program


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = list(_require_tools())
    if missing:
        print(f"error: not on PATH: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        with WorkDir.make(args.workdir, args.keep) as work:
            report = run_benchmark(args, work)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print()
    print(render(report))
    if args.json_out:
        args.json_out.write_text(json.dumps(to_json(report), indent=2) + "\n")
        print(f"\nwrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
