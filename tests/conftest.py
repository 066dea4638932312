"""Shared end-to-end fixtures: policies, the ``drorch`` CLI, the stock ``restic`` oracle, data sets.

Everything here drives drorch from outside, the way an operator does: a policy
file on disk, ``drorch ...`` in a subprocess with ``DRORCH_HOME`` and
``DRORCH_KEY`` in its environment. ``restic`` is the independent oracle (SPEC
§4): what drorch writes, restic must check and restore, and the reverse.

Helpers are plain functions (``make_policy``, ``run_drorch``, ``build_dataset``,
``tree_state``, ``assert_same_tree``, ``assert_one_error``) exposed through
fixtures of the same name, so tests take them as arguments and never import
this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import secrets
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from support import dns_server
from support.cloud_emulators import MotoServer, moto_server_fixture  # noqa: F401 (fixture)

MiB = 1024 * 1024

# ----------------------------------------------------------------------------- environment


def drorch_environment(home: Path, key: str | None) -> dict[str, str]:
    """A clean environment for one drorch run: no RESTIC_*/DRORCH_* leaking in from outside."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RESTIC_", "DRORCH_"))}
    env["DRORCH_HOME"] = str(home)
    if key is not None:
        env["DRORCH_KEY"] = key
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"  # rich tables: never truncate IDs
    env.pop("DRORCH_DEBUG", None)
    return env


@pytest.fixture(scope="session")
def drorch_key() -> str:
    """The repository password of this session; distinctive, so a leak is easy to spot."""
    return "pw-" + secrets.token_hex(16)


@pytest.fixture
def drorch_env(tmp_path: Path, drorch_key: str) -> dict[str, str]:
    return drorch_environment(tmp_path / "drorch-home", drorch_key)


# ----------------------------------------------------------------------------- policies

_MIRROR_KEYS = {"retention", "mode", "rpo", "schedule", "standby"}
_SOURCE_KEYS = {"exclude", "consistency"}


def make_policy(tmp_path: Path, source_dir: Path, repo_dir: Path, **overrides: Any) -> Path:
    """Write a one-source, one-target, one-mirror policy and return its path.

    Overrides: ``retention``, ``mode``, ``rpo``, ``schedule`` (mirror);
    ``exclude``, ``consistency`` (source); ``key`` (encryption.key, default
    ``env:DRORCH_KEY``); ``name`` (metadata.name); ``mirror`` / ``source`` /
    ``target`` (names); ``target_url`` (default ``file://REPO_DIR``);
    ``filename`` (default ``policy.yaml``).
    """
    filename = overrides.pop("filename", "policy.yaml")
    mirror_name = overrides.pop("mirror", "m")
    source_name = overrides.pop("source", "data")
    target_name = overrides.pop("target", "local")
    source: dict[str, Any] = {"name": source_name, "type": "directory",
                              "path": str(source_dir)}
    mirror: dict[str, Any] = {"name": mirror_name, "source": source_name,
                              "targets": [target_name], "mode": "sync", "rpo": "1h"}
    doc: dict[str, Any] = {
        "apiVersion": "drorch/v1",
        "kind": "MirrorPolicy",
        "metadata": {"name": overrides.pop("name", "e2e")},
        "encryption": {"key": overrides.pop("key", "env:DRORCH_KEY")},
        "sources": [source],
        "targets": [{"name": target_name,
                     "url": overrides.pop("target_url", f"file://{repo_dir}")}],
        "mirrors": [mirror],
    }
    for key in list(overrides):
        if key in _MIRROR_KEYS:
            mirror[key] = overrides.pop(key)
        elif key in _SOURCE_KEYS:
            source[key] = overrides.pop(key)
    if overrides:
        raise TypeError(f"make_policy: unknown overrides {sorted(overrides)}")
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    text = StringIO()
    yaml.dump(doc, text)
    path = tmp_path / filename
    path.write_text(text.getvalue())
    return path


@pytest.fixture(name="make_policy")
def make_policy_fixture() -> Callable[..., Path]:
    return make_policy


# ----------------------------------------------------------------------------- the CLI

DRORCH = shutil.which("drorch")


def drorch_argv() -> list[str]:
    """How to start the CLI: the ``drorch`` console script, else ``python -m drorch``."""
    return [DRORCH] if DRORCH else [sys.executable, "-m", "drorch"]


def run_drorch(*args: str | os.PathLike[str], env: dict[str, str],
               timeout: float = 180, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``drorch ARGS`` to completion; never raises on a non-zero exit."""
    return subprocess.run([*drorch_argv(), *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def start_drorch(*args: str | os.PathLike[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``drorch ARGS`` in the background (for kill -9 and races)."""
    return subprocess.Popen([*drorch_argv(), *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


@pytest.fixture(name="run_drorch")
def run_drorch_fixture() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_drorch


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    """A failed command's exit code and output, for assertion messages."""
    argv = proc.args if isinstance(proc.args, str) else " ".join(map(str, proc.args))
    return (f"\n$ {argv}\nexit code {proc.returncode}\n--- stdout ---\n{proc.stdout}"
            f"\n--- stderr ---\n{proc.stderr}")


def drorch_json(*args: str | os.PathLike[str], env: dict[str, str],
                expect: int | tuple[int, ...] = 0) -> Any:
    """Run ``drorch ARGS --json``, check the exit code, return the parsed stdout."""
    proc = run_drorch(*args, "--json", env=env)
    codes = (expect,) if isinstance(expect, int) else expect
    assert proc.returncode in codes, describe(proc)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as err:
        raise AssertionError(f"--json output does not parse: {err}{describe(proc)}") from err


def apply_policy(policy: Path) -> None:
    """Make every mirror of ``policy`` current, in-process (``DRORCH_KEY`` set by the caller)."""
    from drorch.engine.apply import Applier
    from drorch.engine.plan import build_plan
    from drorch.policy import load_policy
    from drorch.secrets import key_source

    loaded = load_policy(policy)
    keys = key_source(loaded.encryption)
    result = Applier(loaded, keys).apply(build_plan(loaded, keys=keys))
    assert result.exit_code == 0, result


@pytest.fixture(name="apply_policy")
def apply_policy_fixture() -> Callable[[Path], None]:
    return apply_policy


def apply_ok(policy: Path, env: dict[str, str]) -> dict[str, Any]:
    """``drorch apply --json`` that must succeed; returns the one target's result."""
    doc = drorch_json("apply", policy, "--yes", env=env)
    assert doc["exit_code"] == 0, doc
    [mirror] = doc["mirrors"]
    [target] = mirror["targets"]
    assert target["ok"], target
    return target


def assert_one_error(proc: subprocess.CompletedProcess[str], exit_code: int, *words: str,
                     secret: str | None = None) -> str:
    """SPEC §3: the exit code, one clear sentence on stderr, no traceback, no secret."""
    both = proc.stdout + proc.stderr
    assert proc.returncode == exit_code, f"expected exit {exit_code}" + describe(proc)
    assert "Traceback" not in both, "a traceback reached the operator" + describe(proc)
    assert "internal error" not in both.lower(), "an unexpected exception" + describe(proc)
    if secret:
        assert secret not in both, "the repository key appeared in the output" + describe(proc)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, "expected exactly one error sentence on stderr" + describe(proc)
    sentence = lines[0]
    for word in words:
        assert word.lower() in sentence.lower(), f"stderr does not mention {word!r}" + describe(proc)
    return sentence


@pytest.fixture(name="describe")
def describe_fixture() -> Callable[..., str]:
    return describe


@pytest.fixture(name="drorch_json")
def drorch_json_fixture() -> Callable[..., Any]:
    return drorch_json


@pytest.fixture(name="apply_ok")
def apply_ok_fixture() -> Callable[..., dict[str, Any]]:
    return apply_ok


@pytest.fixture(name="assert_one_error")
def assert_one_error_fixture() -> Callable[..., str]:
    return assert_one_error


@pytest.fixture(name="start_drorch")
def start_drorch_fixture() -> Callable[..., subprocess.Popen[str]]:
    return start_drorch


# ----------------------------------------------------------------------------- restic


@dataclass
class Restic:
    """The stock restic binary, bound to one password; the independent oracle."""

    binary: str
    password: str
    templates: Path  # freshly initialised repositories, copied instead of re-initialised

    def __call__(self, *args: str | os.PathLike[str], repo: Path, check: bool = True,
                 password: str | None = None, timeout: float = 180
                 ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
        env["RESTIC_PASSWORD"] = password or self.password
        proc = subprocess.run([self.binary, "--no-cache", "-r", str(repo), *map(str, args)],
                              env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check:
            assert proc.returncode == 0, f"restic failed{describe(proc)}"
        return proc

    def init(self, repo: Path, version: str = "2") -> None:
        """``restic init --repository-version VERSION`` at ``repo``.

        restic calibrates scrypt for seconds on every init, so each version is
        initialised once per session and copied; copies share a repository ID,
        which is harmless for repositories that never meet.
        """
        template = self.templates / f"v{version}"
        if not template.exists():
            self("init", "--repository-version", version, repo=template)
        shutil.copytree(template, repo)

    def check(self, repo: Path, read_data: bool = True, lock: bool = True
              ) -> subprocess.CompletedProcess[str]:
        """``restic check`` must pass; packs in no index (left by a crash) are only a hint.

        ``lock=False`` checks without taking restic's exclusive lock: restic 0.14
        refuses to lock while any lock file exists, even one of a dead process,
        until ``restic unlock`` removes it.
        """
        args = [*(["--no-lock"] if not lock else []), "check",
                *(["--read-data"] if read_data else [])]
        proc = self(*args, repo=repo, check=False)
        assert proc.returncode == 0, f"restic check found errors{describe(proc)}"
        assert "no errors were found" in proc.stdout, describe(proc)
        return proc

    def snapshots(self, repo: Path) -> list[dict[str, Any]]:
        return json.loads(self("snapshots", "--json", repo=repo).stdout or "[]")


@pytest.fixture(scope="session")
def restic(tmp_path_factory: pytest.TempPathFactory, drorch_key: str) -> Restic:
    """The stock ``restic`` with the session's password; skips the test when it is missing."""
    binary = shutil.which("restic")
    if binary is None:
        pytest.skip("the stock `restic` binary is not on PATH; it is the interop oracle "
                    "(install restic >= 0.14 to run these tests)")
    return Restic(binary, drorch_key, tmp_path_factory.mktemp("restic-templates"))


# ----------------------------------------------------------------------------- data sets

BASE_MTIME_NS = 1_600_000_000_123_456_789  # 2020-09-13, with nanoseconds that must survive


def random_bytes(size: int, seed: int | str) -> bytes:
    """Deterministic incompressible bytes: same seed, same chunk boundaries, no flaky sizes."""
    return random.Random(seed).randbytes(size)


def build_dataset(root: Path, *, seed: int = 0, big_size: int = 3 * MiB) -> Path:
    """A small tree with every kind of entry a restore must get right; returns ``root``.

    Random binaries (one > 2 MiB, so it is split into several chunks), text,
    an empty file, an empty directory, nested directories, symlinks (relative,
    absolute, dangling), modes 0600/0755/0444/0700, names with spaces, unicode
    and glob characters, nanosecond mtimes, and (as root) a foreign owner.
    """
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {
        "big.bin": random_bytes(big_size, f"big-{seed}"),
        "small.bin": random_bytes(70_000, f"small-{seed}"),
        "text/readme.txt": b"drorch end-to-end data set\n" * 200,
        "text/notes.md": "# Notes\n\nUnicode: \u00e9\u00e8\u00ea \u2713 \U0001F600\n".encode(),
        "empty.txt": b"",
        "nested/a/b/c/deep.txt": b"deep\n" * 1000,
        "nested/a/sibling.bin": random_bytes(200_000, f"sib-{seed}"),
        "nested/a/b/mid.txt": b"middle\n",
        "secret.key": b"not really a key\n",
        "run.sh": b"#!/bin/sh\necho hello\n",
        "readonly.txt": b"read only\n",
        "with space.txt": b"spaces in the name\n",
        "\u00fcn\u00efc\u00f8d\u00e9 \u2713.txt": b"unicode name\n",
        "-dash [x] *.txt": b"glob characters in the name\n",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "empty-dir").mkdir()
    (root / "private").mkdir()
    (root / "private" / "inner.txt").write_bytes(b"private\n")
    os.symlink("text/readme.txt", root / "link-to-readme")
    os.symlink("/etc/hostname", root / "nested" / "absolute-link")
    os.symlink("no/such/target", root / "dangling-link")
    os.chmod(root / "secret.key", 0o600)
    os.chmod(root / "run.sh", 0o755)
    os.chmod(root / "readonly.txt", 0o444)
    os.chmod(root / "private", 0o700)
    if os.geteuid() == 0:
        os.chown(root / "small.bin", 1234, 5678)
    stamp_mtimes(root)
    return root


def stamp_mtimes(root: Path, base_ns: int = BASE_MTIME_NS) -> None:
    """Give every entry a distinct nanosecond mtime; directories last, deepest first."""
    entries = sorted(root.rglob("*"), key=lambda p: (-len(p.parts), str(p)))
    for i, path in enumerate(sorted(p for p in entries if not _is_real_dir(p))):
        ns = base_ns + i * 1_000_000_007
        os.utime(path, ns=(ns, ns), follow_symlinks=False)
    for i, path in enumerate(p for p in entries if _is_real_dir(p)):
        ns = base_ns - (i + 1) * 3_000_000_011
        os.utime(path, ns=(ns, ns))


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


@pytest.fixture(name="build_dataset")
def build_dataset_fixture() -> Callable[..., Path]:
    return build_dataset


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """The standard data set in ``tmp_path/src``."""
    return build_dataset(tmp_path / "src")


# ----------------------------------------------------------------------------- comparing trees


def tree_state(root: Path, *, mtimes: bool = True, owners: bool = True) -> dict[str, tuple]:
    """What a restore must reproduce, per path below ``root`` (``root`` itself excluded).

    Files: mode, size, SHA-256, mtime; directories: mode, mtime; symlinks: target.
    Owners are compared only when running as root (only root restores them).
    """
    owners = owners and os.geteuid() == 0
    state: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            owner = (st.st_uid, st.st_gid) if owners else ()
            when = (st.st_mtime_ns,) if mtimes else ()
            if stat.S_ISLNK(st.st_mode):
                state[rel] = ("symlink", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                state[rel] = ("dir", oct(stat.S_IMODE(st.st_mode)), *when, *owner)
            elif stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                state[rel] = ("file", oct(stat.S_IMODE(st.st_mode)), st.st_size, digest,
                              *when, *owner)
            else:
                state[rel] = ("other", stat.S_IFMT(st.st_mode))
    return state


def assert_same_tree(expected: Path | dict[str, tuple], actual: Path | dict[str, tuple],
                     **kwargs: Any) -> None:
    """Byte-identical contents and the same metadata, with a readable diff on failure."""
    want = expected if isinstance(expected, dict) else tree_state(expected, **kwargs)
    got = actual if isinstance(actual, dict) else tree_state(actual, **kwargs)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    differ = {k: (want[k], got[k]) for k in sorted(set(want) & set(got)) if want[k] != got[k]}
    problems = []
    if missing:
        problems.append(f"missing after restore: {missing}")
    if extra:
        problems.append(f"not in the source: {extra}")
    for rel, (w, g) in differ.items():
        problems.append(f"{rel!r}: source {w} != restored {g}")
    assert not problems, "restored tree differs:\n  " + "\n  ".join(problems)


@pytest.fixture(name="tree_state")
def tree_state_fixture() -> Callable[..., dict[str, tuple]]:
    return tree_state


@pytest.fixture(name="assert_same_tree")
def assert_same_tree_fixture() -> Callable[..., None]:
    return assert_same_tree


def restic_restored_root(target: Path, source: Path) -> Path:
    """restic restores the snapshot's full absolute path below ``--target``."""
    return target / source.resolve().relative_to("/")


def pack_files(repo: Path) -> list[Path]:
    """Complete pack files in a local repository (``data/XX/ID``)."""
    data = repo / "data"
    return sorted(p for p in data.glob("*/*") if p.is_file()) if data.is_dir() else []


def regular_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def digests(root: Path) -> dict[str, str]:
    """SHA-256 of every regular file below ``root``, by path relative to it."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in regular_files(root)}


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """A directory outside tmp_path, removed afterwards (for mounts and the like)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="drorch-e2e-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def mounted_fs(mount_point: Path, fstype: str = "tmpfs", options: str = "size=2m") -> Iterator[Path]:
    """A scratch file system (a small tmpfs to fill, a ramfs without xattrs) at ``mount_point``,
    lazily unmounted afterwards; skips the test where mounting is not permitted here."""
    mount_point.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", fstype, "-o", options, fstype, str(mount_point)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a {fstype} here ({proc.stderr.strip()})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


@pytest.fixture
def mount_fs(scratch_dir: Path) -> Callable[..., Any]:
    """``with mount_fs("tmpfs", "size=4m") as path:`` a scratch file system below ``scratch_dir``."""
    count = iter(range(1_000_000))
    return lambda fstype="tmpfs", options="size=2m": mounted_fs(
        scratch_dir / f"{fstype}-{next(count)}", fstype, options)


@pytest.fixture(scope="session")
def e2e() -> Any:
    """Every helper of this module in one namespace, for tests that need several."""
    import types

    return types.SimpleNamespace(
        MiB=MiB, drorch_argv=drorch_argv, make_policy=make_policy, run_drorch=run_drorch,
        start_drorch=start_drorch,
        describe=describe, drorch_json=drorch_json, apply_ok=apply_ok,
        assert_one_error=assert_one_error, drorch_environment=drorch_environment,
        random_bytes=random_bytes, build_dataset=build_dataset, stamp_mtimes=stamp_mtimes,
        tree_state=tree_state, assert_same_tree=assert_same_tree,
        restic_restored_root=restic_restored_root, pack_files=pack_files,
        regular_files=regular_files, digests=digests,
    )


# ----------------------------------------------------------------------------- a real DNS server




@pytest.fixture
def bind9(tmp_path: Path) -> Iterator[Any]:
    """A real BIND on a free 127.0.0.1 port: zone example.test. (www A 192.0.2.10), updates allowed
    with a TSIG key (``.key_file``, ``.key_env``); stopped by PID afterwards."""
    if not Path(dns_server.NAMED).exists():
        pytest.skip("named (Debian's bind9) is not installed: apt-get install bind9")
    server = dns_server.start_bind(tmp_path / "bind9", records={"www": "A 192.0.2.10"})
    try:
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------- a moto server


@pytest.fixture(scope="session")
def moto_url(moto_server: MotoServer) -> str:
    """The session's moto server (support.cloud_emulators), for state that outlives one drorch call."""
    return moto_server.url


@pytest.fixture
def moto(moto_url: str) -> str:
    """A freshly reset moto server."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    return moto_url
