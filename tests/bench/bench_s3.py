"""Benchmark drorch against restic backing up to S3: the moto server on 127.0.0.1.

Run it from the repository root (drorch installed with the dev extra, ``restic`` on PATH)::

    python tests/bench/bench_s3.py                   # 512 MiB + 5,000 small files
    python tests/bench/bench_s3.py --size-mib 1024 --small-files 20000

Both tools back up the same generated data set (see ``bench_vs_restic.py``) into
their own prefix of one bucket on one moto server, then restore it;
wall time, throughput and peak RSS of each child are printed with their ratios.
moto tops out around 155 MB/s and holds every object in memory, so this measures
how well each tool keeps the endpoint busy (parallel uploads, request count),
not what real S3 would do. It never asserts on time.

Goal (issue 4): drorch's throughput >= restic's with parallel uploads.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vs_restic import (  # noqa: E402  (a sibling script, not a package)
    MIRROR,
    Drorch,
    Restic,
    Run,
    assert_identical,
    generate_dataset,
    run_checked,
)

BUCKET = "drorch-bench"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


class DrorchS3(Drorch):
    def __init__(self, work: Path, source: Path, endpoint: str) -> None:
        super().__init__(work, source)
        self.endpoint = endpoint

    def env(self) -> dict[str, str]:
        return super().env() | AWS_ENV

    def init(self) -> None:
        q = json.dumps
        self.policy.write_text(f"""\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {{name: bench-s3}}
encryption: {{key: env:DRORCH_KEY}}
sources: [{{name: bench-data, type: directory, path: {q(str(self.source))}}}]
targets: [{{name: s3, url: "s3://{BUCKET}/drorch", region: us-east-1, endpoint: {q(self.endpoint)}}}]
mirrors: [{{name: {MIRROR}, source: bench-data, targets: [s3], rpo: 1h}}]
""")
        run_checked(["drorch", "validate", str(self.policy)], self.env(), self.log)


class ResticS3(Restic):
    def __init__(self, work: Path, source: Path, endpoint: str) -> None:
        super().__init__(work, source)
        self.repo = f"s3:{endpoint}/{BUCKET}/restic"  # type: ignore[assignment]

    def env(self) -> dict[str, str]:
        return super().env() | AWS_ENV


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server in its own process on a free 127.0.0.1 port; yields its URL.

    Not in this process: children forked from a process holding every stored
    object would report its memory as their peak RSS (Linux keeps it across exec).
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _line(step: str, size: int, ours: Run, theirs: Run) -> str:
    mib = size / 2**20
    return (f"{step:14} {ours.seconds:8.2f} {theirs.seconds:8.2f} {theirs.seconds / ours.seconds:6.2f} "
            f"{mib / ours.seconds:9.1f} {mib / theirs.seconds:9.1f} {ours.peak_rss_mib:9.1f} "
            f"{theirs.peak_rss_mib:9.1f} {ours.peak_rss_mib / theirs.peak_rss_mib:6.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--small-files", type=int, default=5000)
    args = parser.parse_args()
    with moto_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint, **{k.lower(): v for k, v in AWS_ENV.items()
                                                     if k != "AWS_DEFAULT_REGION"},
                     region_name="us-east-1").create_bucket(Bucket=BUCKET)
        with tempfile.TemporaryDirectory(prefix="drorch-bench-s3-") as tmp:
            work = Path(tmp)
            source = work / "data"
            source.mkdir()
            dataset = generate_dataset(source, args.size_mib, args.small_files, seed=1)
            size = dataset.total_bytes
            tools = [DrorchS3(work, source, endpoint), ResticS3(work, source, endpoint)]
            for tool in tools:
                tool.init()
            backups = [tool.backup() for tool in tools]
            restores = []
            for tool in tools:
                dest = work / f"{tool.name}-restore"
                restores.append(tool.restore(dest))
            assert_identical(source, work / "drorch-restore")
            print(f"data set: {dataset.describe()}; moto server at {endpoint}; load {os.getloadavg()[0]:.2f}")
            print("time ratio = restic s / drorch s (>1: drorch faster); RSS ratio = drorch / restic")
            print(f"{'step':14} {'drorch s':>8} {'restic s':>8} {'ratio':>6} {'dr MiB/s':>9} "
                  f"{'re MiB/s':>9} {'dr RSS':>9} {'re RSS':>9} {'RSS x':>6}")
            print(_line("backup to S3", size, *backups))
            print(_line("restore", size, *restores))
            print("correctness: drorch's restore from S3 is byte-identical to the source")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
