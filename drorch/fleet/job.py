"""``python -m drorch.fleet.job POLICY MIRROR``: one mirror run, as a child of the agent.

The agent runs each mirror job in its own process so it can stop it for
certain: when the engine stops acknowledging its heartbeats (a partition) or
it hands the job back on SIGTERM, it kills this process, and a kill at any
point is safe (``run_mirror`` adopts uploaded packs on the retry and
publishes at most one snapshot). The process also dies with its agent
(``PR_SET_PDEATHSIG``), so a ``kill -9`` of the agent never leaves a job
running beside its retry.

Prints the ``ApplyResult`` as JSON on stdout; exits with its exit code.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time

from drorch.engine.apply import apply_policy
from drorch.policy import load_policy
from drorch.ports.errors import DrorchError
from drorch.state.tables import StateStore

__all__ = ["main"]

_PR_SET_PDEATHSIG = 1
SLOW_PUT_ENV = "DRORCH_FLEET_TEST_PUT_DELAY_S"
"""Test hook: seconds to sleep before each ``data/`` put, so a test can kill a job mid-upload."""


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit if it already has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the agent's own fencing still stops the job on a lost lease
    if os.getppid() != parent:
        os._exit(1)


def _slow_uploads(delay: float) -> None:
    from drorch.storage.retry import RetryingStore

    put = RetryingStore.put

    def slow_put(self: RetryingStore, name: str, data: bytes | bytearray | memoryview, *,
                 exclusive: bool = False) -> None:
        if name.startswith("data/"):
            time.sleep(delay)
        put(self, name, data, exclusive=exclusive)

    RetryingStore.put = slow_put  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    policy_path, mirror, parent = argv[0], argv[1], int(argv[2])
    die_with_parent(parent)
    if os.environ.get(SLOW_PUT_ENV):
        _slow_uploads(float(os.environ[SLOW_PUT_ENV]))
    try:
        result = apply_policy(load_policy(policy_path), mirror=mirror, state=StateStore())
    except DrorchError as error:
        sys.stderr.write(f"{type(error).__name__}: {error}\n")
        return error.exit_code
    sys.stdout.write(json.dumps(result.to_json(), default=str))
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
