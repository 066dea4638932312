"""A small server tree that changes like a real one, and real applies over it (in-process).

A "normal day" does what a web/app server's data directory does between two
runs: logs grow and sometimes rotate, a few pages and configs are edited, a
few uploads (random bytes: images) arrive, a few old files go. Ransomware and
mass deletion are the two attacks the detector must see.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from drorch.engine.apply import Applier, TargetResult
from drorch.engine.plan import build_plan
from drorch.policy import Policy, load_policy
from drorch.secrets import StaticPassword
from drorch.state.tables import StateStore


def text(rng: random.Random, size: int) -> bytes:
    words = [
        "order", "user", "cart", "item", "paid", "shipped", "GET", "POST", "200", "404", "ms",
        "cache", "hit", "miss",
    ]
    out = " ".join(rng.choice(words) + str(rng.randrange(1000)) for _ in range(size // 6 + 1))
    return out.encode()[:size]


@dataclass
class ServerTree:
    """About 300 files, ~2.5 MiB: docs, configs, logs, uploads."""

    root: Path
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    counter: int = 0

    def build(self) -> ServerTree:
        for i in range(150):
            self._write(f"www/docs/page-{i:03d}.html", text(self.rng, self.rng.randrange(500, 12_000)))
        for i in range(80):
            self._write(f"etc/app/conf-{i:02d}.ini", text(self.rng, self.rng.randrange(100, 2_000)))
        for i in range(6):
            self._write(f"log/app-{i}.log", text(self.rng, 50_000))
        for i in range(60):
            self._write(f"uploads/img-{i:03d}.jpg", self.rng.randbytes(self.rng.randrange(2_000, 20_000)))
        return self

    def files(self, under: str = "") -> list[Path]:
        return sorted(p for p in (self.root / under).rglob("*") if p.is_file())

    def _write(self, rel: str, data: bytes, append: bool = False) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab" if append else "wb") as stream:
            stream.write(data)
        self.counter += 1
        stamp = 1_700_000_000 + self.counter  # a distinct mtime for every write
        os.utime(path, (stamp, stamp))

    def normal_day(self) -> None:
        rng = self.rng
        for log in rng.sample(self.files("log"), 3):
            self._write(str(log.relative_to(self.root)), text(rng, rng.randrange(2_000, 20_000)), append=True)
        if rng.random() < 0.15:  # log rotation: the old log is archived, a new one starts
            log = rng.choice(self.files("log"))
            log.rename(log.with_suffix(f".{self.counter}.old"))
            self._write(str(log.relative_to(self.root)), text(rng, 1_000))
        for page in rng.sample(self.files("www"), rng.randrange(0, 4)):
            self._write(str(page.relative_to(self.root)), text(rng, rng.randrange(500, 12_000)))
        for conf in rng.sample(self.files("etc"), rng.randrange(0, 2)):
            self._write(str(conf.relative_to(self.root)), text(rng, rng.randrange(100, 2_000)))
        for _ in range(rng.randrange(0, 4)):
            self._write(f"uploads/new-{self.counter}.jpg", rng.randbytes(rng.randrange(2_000, 60_000)))
        for old in rng.sample(self.files("uploads"), rng.randrange(0, 3)):
            old.unlink()

    def ransomware(self, share: float = 0.30) -> int:
        """Overwrite ``share`` of all files in place with random bytes of the same size."""
        victims = self.rng.sample(self.files(), round(share * len(self.files())))
        for path in victims:
            self._write(str(path.relative_to(self.root)), self.rng.randbytes(path.stat().st_size))
        return len(victims)

    def mass_deletion(self, share: float = 0.5) -> int:
        victims = self.rng.sample(self.files(), round(share * len(self.files())))
        for path in victims:
            path.unlink()
        return len(victims)


@dataclass
class Mirror:
    """A policy over the tree and real in-process applies; each returns the primary's result."""

    policy_path: Path
    policy: Policy
    env: dict[str, str]  # for `drorch` subprocesses: the same DRORCH_HOME and key
    exit_code: int = 0  # of the last apply

    @property
    def home(self) -> Path:
        return Path(self.env["DRORCH_HOME"])

    @property
    def keys(self) -> StaticPassword:
        return StaticPassword(self.env["DRORCH_KEY"].encode())

    def apply(self) -> TargetResult:
        state = StateStore(self.home / "state.db")
        plan = build_plan(self.policy, keys=self.keys)
        result = Applier(self.policy, self.keys, state=state).apply(plan)
        primary = result.mirrors[0].targets[0]
        assert primary.ok, primary
        self.exit_code = result.exit_code
        return primary


@pytest.fixture
def server_tree(tmp_path: Path) -> ServerTree:
    return ServerTree(tmp_path / "srv").build()


@pytest.fixture
def mirror(tmp_path: Path, server_tree: ServerTree, make_policy: Callable[..., Path],
           drorch_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Mirror]:
    monkeypatch.setenv("DRORCH_HOME", drorch_env["DRORCH_HOME"])  # in-process stores: same home

    def make(**overrides: Any) -> Mirror:
        path = make_policy(tmp_path, server_tree.root, tmp_path / "repo", **overrides)
        return Mirror(path, load_policy(path), drorch_env)

    return make
