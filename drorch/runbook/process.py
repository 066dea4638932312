"""Running a command for a step: argv only, explicit environment, killed at the deadline.

Commands never pass through a shell. Each runs in its own process group, so at
the deadline the whole group (the command and anything it started) gets
SIGTERM, then SIGKILL after a short grace period. Output (stdout and stderr,
interleaved as written) is captured; its last lines become the step's tail.

The environment is explicit: a command sees only ``PATH``, ``HOME``, ``LANG``,
``LC_ALL``, ``TZ``, ``TMPDIR``, the ``DRORCH_RUN_ID`` / ``DRORCH_STEP`` /
``DRORCH_OUTPUTS`` of its step, and what the step lists under ``env``. Cloud
credentials and the repository key in drorch's own environment do not leak into
scripts; pass them under ``env`` (``${NAME}`` reads drorch's environment).
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from drorch.ports.deadline import Deadline
from drorch.ports.errors import StepFailed, StepTimedOut

__all__ = ["Completed", "base_environment", "run_command"]

_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
_TAIL_LINES = 200
_GRACE_S = 3.0


@dataclass(frozen=True)
class Completed:
    exit_code: int
    output: str  # the last lines the command printed

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def base_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment a step's command gets (see the module docstring)."""
    env = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(extra)
    return env


def run_command(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, deadline: Deadline,
                on_pid: Callable[[int], None] = lambda pid: None,
                log: Callable[[str], None] = lambda line: None) -> Completed:
    """Run ``argv`` to completion or until ``deadline``; ``StepTimedOut`` then, with the tail.

    A command that cannot start (not found, not executable, bad cwd) raises a
    permanent ``StepFailed``: retrying would fail the same way.
    """
    if not cwd.is_dir():
        raise StepFailed(f"working directory {cwd} does not exist", permanent=True)
    try:
        proc = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except FileNotFoundError:
        raise StepFailed(f"command not found: {argv[0]}", permanent=True,
                         hint="give an absolute path or put it on PATH") from None
    except PermissionError:
        raise StepFailed(f"command is not executable: {argv[0]}", permanent=True) from None
    on_pid(proc.pid)
    lines: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    reader = threading.Thread(target=_read, args=(proc, lines, log), daemon=True)
    reader.start()
    while True:
        try:
            proc.wait(timeout=min(0.1, max(deadline.remaining(), 0.001)))
            break
        except subprocess.TimeoutExpired:
            if deadline.expired:
                _kill_group(proc)
                reader.join(1)
                raise StepTimedOut(f"{argv[0]} was still running at the deadline and was killed",
                                   tail="\n".join(lines)) from None
    reader.join(5)
    return Completed(proc.returncode, "\n".join(lines))


def _read(proc: subprocess.Popen[bytes], lines: collections.deque[str],
          log: Callable[[str], None]) -> None:
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        lines.append(line)
        log(line)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the command's process group, then SIGKILL whatever is left after the grace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=_GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
