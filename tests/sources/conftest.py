"""Fixtures for image and volume sources: sparse images, loop devices, policies, stand-in tools.

Policies here are written by ``source_policy`` (the shared ``make_policy`` only
knows directory sources). Loop devices need root and ``losetup``; tests that use
them skip otherwise. ``stand_ins`` puts small executables first on PATH that
append their name and argv (one JSON list per line) to a log and then run an
optional shell body, so the LVM and ZFS paths run on machines without
device-mapper or the ZFS module.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

MiB = 1024 * 1024


def source_policy(tmp_path: Path, path: Path, repo: Path, *, type: str = "image",  # noqa: A002
                  consistency: dict[str, Any] | None = None, mirror: str = "vm",
                  filename: str = "policy.yaml") -> Path:
    source: dict[str, Any] = {"name": "disk", "type": type, "path": str(path)}
    if consistency:
        source["consistency"] = consistency
    doc = {
        "apiVersion": "drorch/v1", "kind": "MirrorPolicy", "metadata": {"name": "images"},
        "encryption": {"key": "env:DRORCH_KEY"},
        "sources": [source],
        "targets": [{"name": "local", "url": f"file://{repo}"}],
        "mirrors": [{"name": mirror, "source": "disk", "targets": ["local"], "rpo": "1h"}],
    }
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    text = StringIO()
    y.dump(doc, text)
    out = tmp_path / filename
    out.write_text(text.getvalue())
    return out


def make_image(path: Path, size: int, extents: list[tuple[int, int]], seed: int = 0) -> Path:
    """A sparse file of ``size`` bytes with random data at each (offset, length), holes elsewhere."""
    rng = random.Random(seed)
    with open(path, "wb") as fh:
        fh.truncate(size)
        for offset, length in extents:
            fh.seek(offset)
            fh.write(rng.randbytes(length))
    return path


def overwrite(path: Path, offset: int, length: int, seed: int = 1) -> bytes:
    data = random.Random(seed).randbytes(length)
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)
    return data


@pytest.fixture
def src(tmp_path: Path) -> Any:
    import types

    return types.SimpleNamespace(policy=source_policy, image=make_image, overwrite=overwrite, MiB=MiB)


# ----------------------------------------------------------------------------- loop devices


def _can_loop() -> bool:
    return os.geteuid() == 0 and shutil.which("losetup") is not None and os.path.exists("/dev/loop-control")


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[Callable[[Path], Path]]:
    """Attach backing files as loop devices (root only); all detached afterwards."""
    if not _can_loop():
        pytest.skip("loop devices need root and losetup")
    attached: list[str] = []

    def attach(backing: Path) -> Path:
        done = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"losetup failed here: {done.stderr.strip()}")
        attached.append(done.stdout.strip())
        return Path(attached[-1])

    yield attach
    for device in attached:
        subprocess.run(["losetup", "--detach", device], capture_output=True)


# ----------------------------------------------------------------------------- stand-in tools


class StandIns:
    """Executables in ``bin`` (first on PATH in ``env``) that log their argv to ``log``.

    The log's path is written into each script: tools run with a scrubbed environment.
    """

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.bin = root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.log = root / "calls.log"
        self.env = dict(env)
        self.env["PATH"] = f"{self.bin}:{env.get('PATH', os.environ.get('PATH', ''))}"
        self.env["STAND_IN_LOG"] = str(self.log)

    def add(self, name: str, body: str = "") -> None:
        script = self.bin / name
        script.write_text(
            "#!/bin/sh\n"
            f'python3 -c \'import json,sys; print(json.dumps(sys.argv[1:]))\' {name} "$@" '
            f'>> "{self.log}"\n' + body + "\n")
        script.chmod(0o755)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def tools_called(self) -> list[str]:
        return [" ".join(call[:2]) for call in self.calls()]


@pytest.fixture
def stand_ins(tmp_path: Path, drorch_env: dict[str, str]) -> StandIns:
    return StandIns(tmp_path / "stand-ins", drorch_env)
