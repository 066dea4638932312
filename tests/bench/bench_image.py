"""Benchmark: mirroring a sparse disk image with drorch vs ``restic backup --stdin``.

Run from the repository root (drorch installed, ``restic`` on PATH)::

    python tests/bench/bench_image.py                      # 2 GiB image, 512 MiB of data
    python tests/bench/bench_image.py --size-mib 512 --data-mib 128   # quick
    python tests/bench/bench_image.py --run-blocks 1       # changes scattered block by block
    python tests/bench/bench_image.py --json out.json

In one run, on one machine, both tools from the same warm page cache:

1. A sparse image of ``--size-mib`` with ``--data-mib`` of random (incompressible)
   data in 8 MiB extents spread over it; the rest are holes.
2. First pass: ``drorch apply`` (CLI, a generated policy, ``--quiet``) into an
   empty repository, and ``restic backup --stdin`` of the same image (restic
   reads the holes as zeros; it has no other way to take a block device).
3. 1% of the image's 512 KiB blocks are overwritten with new random data, in
   runs of ``--run-blocks`` consecutive blocks inside the data extents (default
   8: 4 MiB writes, like a filesystem writing extents); then the second pass.
4. Each drorch pass is also timed in-process (load policy, plan, apply: what
   the CLI does after start-up, against a second repository), since the
   interpreter and import start-up (~0.6 s here) is a fixed cost per run that
   does not grow with the image and that the 5x goal is not about.
5. Checks (untimed): restic check --read-data on drorch's repository and a
   byte-identical ``drorch restore`` of the second snapshot.

Reported: seconds and image MiB/s per pass and tool, the throughput ratio
(restic time / drorch time; goal >= 1 on the first pass), drorch's second-pass
speed-up over its first (goal >= 5), and each repository's growth on the second
pass divided by the bytes changed (goal <= 2). Goals are reported, not asserted.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1024 * 1024
BLOCK = 512 * 1024
PASSWORD = "drorch-bench-image-password"
EXTENT = 8 * MIB


def make_image(path: Path, size: int, data: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    count = data // EXTENT
    stride = size // count
    extents = [(i * stride, EXTENT) for i in range(count)]
    with open(path, "wb") as fh:
        fh.truncate(size)
        for offset, length in extents:
            fh.seek(offset)
            fh.write(rng.randbytes(length))
    return extents


def change_blocks(path: Path, extents: list[tuple[int, int]], size: int, run_blocks: int, seed: int) -> int:
    """Overwrite 1% of the image's blocks, ``run_blocks`` at a time, inside data extents."""
    rng = random.Random(seed)
    wanted = max(1, (size // BLOCK) // 100)
    chosen: set[int] = set()
    candidates = [offset // BLOCK + k for offset, length in extents
                  for k in range(0, length // BLOCK - run_blocks + 1, run_blocks)]
    rng.shuffle(candidates)
    for first in candidates:
        if len(chosen) >= wanted:
            break
        chosen.update(range(first, first + min(run_blocks, wanted - len(chosen))))
    with open(path, "r+b") as fh:
        for block in sorted(chosen):
            fh.seek(block * BLOCK)
            fh.write(rng.randbytes(BLOCK))
    return len(chosen) * BLOCK


def tree_size(path: Path) -> int:
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(path) for f in files)


def timed(argv: list[str], env: dict[str, str], stdin: Path | None = None) -> float:
    os.sync()
    start = time.perf_counter()
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as inp:
        done = subprocess.run(argv, env=env, stdin=inp, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds


def policy_file(work: Path, image: Path, repo: Path, name: str) -> Path:
    path = work / f"{name}.yaml"
    path.write_text(f"""apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {{name: bench-image}}
encryption: {{key: env:DRORCH_KEY}}
sources: [{{name: disk, type: image, path: {image}}}]
targets: [{{name: local, url: "file://{repo}"}}]
mirrors: [{{name: vm, source: disk, targets: [local], rpo: 1h}}]
""")
    return path


def in_process_pass(policy: Path) -> float:
    from drorch.engine.apply import Applier
    from drorch.engine.plan import build_plan
    from drorch.policy import load_policy
    from drorch.secrets import key_source

    os.sync()
    start = time.perf_counter()  # everything `drorch apply` does after the interpreter has started
    loaded = load_policy(policy)
    keys = key_source(loaded.encryption)
    result = Applier(loaded, keys).apply(build_plan(loaded, keys=keys))
    seconds = time.perf_counter() - start
    if result.exit_code != 0:
        sys.exit(f"in-process apply failed: {result.to_json()}")
    return seconds


def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    size, data = args.size_mib * MIB, args.data_mib * MIB
    image = work / "vm.raw"
    extents = make_image(image, size, data, args.seed)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "DRORCH_"))}
    env.update(DRORCH_KEY=PASSWORD, RESTIC_PASSWORD=PASSWORD, DRORCH_HOME=str(work / "home"))
    os.environ.update(DRORCH_KEY=PASSWORD, DRORCH_HOME=str(work / "home-api"))
    drorch = shutil.which("drorch") or sys.exit("drorch is not on PATH")
    restic = shutil.which("restic") or sys.exit("restic is not on PATH")
    d_repo, r_repo, a_repo = work / "drorch-repo", work / "restic-repo", work / "drorch-api-repo"
    policy = policy_file(work, image, d_repo, "cli")
    api_policy = policy_file(work, image, a_repo, "api")
    subprocess.run([restic, "init", "-q", "-r", str(r_repo), "--repository-version", "2"], env=env,
                   check=True, capture_output=True)
    apply = [drorch, "apply", str(policy), "--yes", "--quiet"]
    backup = [restic, "-q", "-r", str(r_repo), "backup", "--stdin", "--stdin-filename", "vm.raw"]

    t = {"drorch 1": timed(apply, env), "restic 1": timed(backup, env, stdin=image),
         "api 1": in_process_pass(api_policy)}
    sizes1 = {"drorch": tree_size(d_repo), "restic": tree_size(r_repo)}
    changed = change_blocks(image, extents, size, args.run_blocks, args.seed + 1)
    t |= {"drorch 2": timed(apply, env), "restic 2": timed(backup, env, stdin=image),
          "api 2": in_process_pass(api_policy)}
    growth = {"drorch": tree_size(d_repo) - sizes1["drorch"], "restic": tree_size(r_repo) - sizes1["restic"]}

    check = subprocess.run([restic, "-r", str(d_repo), "check", "--read-data"], env=env,
                           capture_output=True, text=True)
    out = work / "restored.raw"
    subprocess.run([drorch, "restore", str(policy), "latest", "--to", str(out), "--quiet"], env=env,
                   check=True, capture_output=True)
    identical = filecmp.cmp(image, out, shallow=False)
    return {
        "image_mib": args.size_mib, "data_mib": args.data_mib, "changed_bytes": changed,
        "run_blocks": args.run_blocks, "seconds": t, "repo_first": sizes1, "repo_growth": growth,
        "throughput_mib_s": {k: args.size_mib / v for k, v in t.items()},
        "first_pass_ratio_restic_over_drorch": t["restic 1"] / t["drorch 1"],
        "second_pass_speedup_cli": t["drorch 1"] / t["drorch 2"],
        "second_pass_speedup_engine": t["api 1"] / t["api 2"],
        "growth_over_changed": {k: v / changed for k, v in growth.items()},
        "restic_check_ok": check.returncode == 0 and "no errors were found" in check.stdout,
        "restore_identical": identical,
        "restored_allocated_mib": out.stat().st_blocks * 512 / MIB,
    }


def render(r: dict) -> str:
    s, tp = r["seconds"], r["throughput_mib_s"]
    lines = [
        f"image {r['image_mib']} MiB, {r['data_mib']} MiB of data; "
        f"changed {r['changed_bytes'] / MIB:.1f} MiB (1% of 512 KiB blocks, runs of {r['run_blocks']})",
        f"{'pass':<14}{'drorch CLI':>18}{'drorch engine':>18}{'restic --stdin':>18}",
    ]
    for n in ("1", "2"):
        lines.append(f"{'first' if n == '1' else 'second':<14}"
                     f"{s['drorch ' + n]:>7.2f}s {tp['drorch ' + n]:>6.0f} MiB/s"
                     f"{s['api ' + n]:>7.2f}s {tp['api ' + n]:>6.0f} MiB/s"
                     f"{s['restic ' + n]:>7.2f}s {tp['restic ' + n]:>6.0f} MiB/s")
    g = r["growth_over_changed"]
    lines += [
        f"first pass throughput ratio restic/drorch: {r['first_pass_ratio_restic_over_drorch']:.2f} "
        "(goal >= 1)",
        f"second pass speed-up over first: CLI {r['second_pass_speedup_cli']:.1f}x, engine "
        f"{r['second_pass_speedup_engine']:.1f}x (goal >= 5)",
        f"repository growth / changed bytes: drorch {g['drorch']:.2f}, restic {g['restic']:.2f} (goal <= 2)",
        f"repository after first pass: drorch {r['repo_first']['drorch'] / MIB:.0f} MiB, "
        f"restic {r['repo_first']['restic'] / MIB:.0f} MiB",
        f"restic check --read-data on drorch's repository: {'ok' if r['restic_check_ok'] else 'FAILED'}; "
        f"drorch restore identical: {r['restore_identical']} "
        f"({r['restored_allocated_mib']:.0f} MiB allocated)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--data-mib", type=int, default=512)
    parser.add_argument("--run-blocks", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="drorch-bench-image-", dir=args.workdir))
    try:
        result = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = result["restic_check_ok"] and result["restore_identical"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
