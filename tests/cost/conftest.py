"""A realistic mixed source tree for cost forecasts: what a server's data directory holds."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

WORDS = [
    "GET", "POST", "PUT", "/api/v1/orders", "/static/app.js", "/login", "200", "201", "304", "404",
    "500", "user", "session", "cache", "miss", "hit", "upstream", "timeout", "retry", "db", "query",
    "commit", "rollback", "warning", "error", "info", "debug",
]


def log_text(rng: random.Random, size: int) -> bytes:
    """Access/application log lines: timestamps, IPs, paths, codes, durations (compresses ~5-8x)."""
    lines, total = [], 0
    t = rng.randrange(1_700_000_000, 1_800_000_000)
    while total < size:
        t += rng.randrange(0, 3)
        line = (f"2026-11-{t % 28 + 1:02d}T{t % 24:02d}:{t % 60:02d}:{t % 59:02d}Z "
                f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)} "
                f"{' '.join(rng.choice(WORDS) for _ in range(rng.randrange(3, 9)))} "
                f"{rng.randrange(100000)}us req={rng.getrandbits(48):012x}\n")
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def records(rng: random.Random, size: int) -> bytes:
    """A database-like binary: fixed-size records, some fields random, padding (compresses ~2-3x)."""
    out = bytearray()
    while len(out) < size:
        out += rng.randrange(2**32).to_bytes(4, "little") + bytes(12) + rng.randbytes(8) + b"\x01" * 8
    return bytes(out[:size])


def build_mixed_tree(root: Path, seed: int = 7, scale: float = 1.0) -> Path:
    """About 26 MiB at scale 1: logs, text, a database file, media, archives and duplicates."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)

    def write(rel: str, data: bytes) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    for i in range(int(6 * scale)):
        write(f"var/log/app-{i}.log", log_text(rng, rng.randrange(300_000, 1_500_000)))
    for i in range(int(120 * scale)):
        write(f"srv/www/docs/page-{i:03d}.html", log_text(rng, rng.randrange(2_000, 40_000)))
    write("var/lib/db/orders.db", records(rng, int(4_000_000 * scale)))
    for i in range(int(40 * scale)):
        write(f"srv/www/media/img-{i:03d}.jpg", rng.randbytes(rng.randrange(20_000, 200_000)))
    write("srv/backups/release.tar.gz", rng.randbytes(int(3_000_000 * scale)))
    for i in range(int(3 * scale)):  # duplicates: the same release and images copied around
        (root / f"home/user{i}").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / "srv/backups/release.tar.gz", root / f"home/user{i}/release.tar.gz")
        shutil.copyfile(root / f"srv/www/media/img-{i:03d}.jpg", root / f"home/user{i}/photo.jpg")
    for i in range(int(200 * scale)):
        write(f"etc/conf.d/service-{i:03d}.conf", log_text(rng, rng.randrange(100, 3_000)))
    return root


@pytest.fixture(name="mixed_tree", scope="session")
def mixed_tree_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session (it takes seconds); tests only read it."""
    return build_mixed_tree(tmp_path_factory.mktemp("mixed") / "src")
