"""Running external programs for a source: the policy's pre/post hooks and snapshot tools.

Every program is an argv list (never a shell string), runs in its own process
group with stdin closed, and is bounded by a timeout; when the timeout passes,
or drorch itself is interrupted, the whole group is killed, so a hung hook
cannot keep a database frozen. Output (stdout and stderr) is captured; when a
program fails, its last lines are part of the one-sentence error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from drorch.ports.errors import SourceError

_TAIL_LINES = 3
_TAIL_CHARS = 400


class HookFailed(SourceError):
    """A hook or snapshot tool exited non-zero, timed out, or could not be started."""

    def __init__(self, message: str, *, output: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.output = output


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    stdout: str
    stderr: str
    seconds: float


def run(argv: Sequence[str], *, what: str, timeout_s: float, env: Mapping[str, str] | None = None
        ) -> Completed:
    """Run ``argv`` to completion; HookFailed (one sentence, with the output's tail) otherwise."""
    name = argv[0]
    start = time.monotonic()
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=dict(env) if env is not None else None,
                                start_new_session=True)
    except FileNotFoundError:
        raise HookFailed(f"the {what} `{name}` was not found",
                         hint="install it or fix the path in the policy (argv[0] must be a program "
                              "on PATH or an absolute path)") from None
    except PermissionError:
        raise HookFailed(f"the {what} `{name}` is not executable",
                         hint=f"chmod +x {name}, or check the path in the policy") from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        raise HookFailed(f"the {what} `{name}` did not finish within {timeout_s:g}s and was killed"
                         f"{_tail(out, err)}", output=_text(out) + _text(err),
                         hint="raise consistency.timeout in the policy or fix the hook") from None
    except BaseException:  # interrupted (SIGTERM, Ctrl-C): never leave the hook running
        _kill_group(proc)
        with contextlib.suppress(Exception):
            proc.communicate(timeout=5)
        raise
    stdout, stderr = _text(out), _text(err)
    if proc.returncode != 0:
        raise HookFailed(f"the {what} `{name}` failed with exit code {proc.returncode}{_tail(out, err)}",
                         output=stdout + stderr)
    return Completed(tuple(argv), stdout, stderr, time.monotonic() - start)


def require_tool(tool: str, snapshot: str) -> str:
    """The path of a snapshot tool; SourceError naming the package when it is missing."""
    found = shutil.which(tool)
    if found is None:
        package = {"lvcreate": "lvm2", "lvs": "lvm2", "lvremove": "lvm2", "zfs": "zfsutils-linux",
                   "btrfs": "btrfs-progs"}.get(tool, tool)
        raise SourceError(f"consistency.snapshot: {snapshot} needs `{tool}`, which is not installed "
                          "or not on PATH", hint=f"install {package}, or choose another snapshot method")
    return found


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


def _tail(out: bytes | None, err: bytes | None) -> str:
    """': "last lines"' of the output, stderr first, flattened to one line; '' when silent."""
    lines = [line.strip() for line in (_text(err) + "\n" + _text(out)).splitlines() if line.strip()]
    if not lines:
        return ""
    text = " / ".join(lines[-_TAIL_LINES:])
    if len(text) > _TAIL_CHARS:
        text = "..." + text[-_TAIL_CHARS:]
    return f': "{text}"'
