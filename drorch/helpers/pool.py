"""A few helper processes fed batches (see ``drorch.helpers``).

``Helpers`` starts ``count`` children running ``python -m MODULE`` and hands
each batch to the least busy one. A reader thread per child takes its results
in order and passes them to ``on_results``. At most ``IN_FLIGHT`` batches wait
per child, so a producer that outruns the helpers stops and waits.

Nothing is lost if a helper dies, whether it is killed, runs out of memory or
fails to start. Every batch it had not answered goes to ``on_lost``, and the
caller then does that work itself. A child gets the repository key in its
first frame on stdin, never in its argv or environment. Its environment holds
only what finding Python and drorch needs, so secrets the policy reads from
``env:`` are never copied into it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from drorch.helpers.frames import read_frame, write_frame
from drorch.process import base_environment
from drorch.repository.crypto import Key

Batch = TypeVar("Batch")  # the caller's record of a batch, handed back with its results
IN_FLIGHT = 4
_PYTHON_ENV = ("VIRTUAL_ENV", "PYTHONHOME", "LD_LIBRARY_PATH", "PYTHONDONTWRITEBYTECODE")


@dataclass
class _Child(Generic[Batch]):
    process: subprocess.Popen[bytes]
    stdin: IO[bytes]
    stdout: IO[bytes]
    pending: deque[Batch] = field(default_factory=deque)
    dead: bool = False
    writing: threading.Lock = field(default_factory=threading.Lock)  # one sender at a time


class Helpers(Generic[Batch]):
    """``count`` processes running ``module``; ``submit`` returns False once none is left (do
    the work in-process then). ``args`` go on their command line and ``pass_fds`` stay open
    in them (a directory to work below, say): neither may hold a secret."""

    def __init__(self, module: str, key: Key, count: int,
                 on_results: Callable[[Batch, Any], None], on_lost: Callable[[Batch], None], *,
                 args: tuple[str, ...] = (), pass_fds: tuple[int, ...] = ()) -> None:
        self._on_results, self._on_lost = on_results, on_lost
        self._argv = [sys.executable, "-m", module, *args]
        self._pass_fds = pass_fds
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(IN_FLIGHT * count)
        self._children: list[_Child[Batch]] = []
        try:
            for _ in range(count):
                self._children.append(self._start(key))
        except OSError:  # the ones started would wait on their input for ever
            for child in self._children:
                child.process.kill()
                child.process.wait()
                _close_quietly(child.stdout)
            raise
        self._readers = [threading.Thread(target=self._read, args=(child,), name="helper-reader",
                                          daemon=True) for child in self._children]
        for reader in self._readers:
            reader.start()

    @property
    def pids(self) -> list[int]:
        return [child.process.pid for child in self._children]

    def submit(self, batch: Batch, work: object) -> bool:
        """Queue ``work`` (what the child's handler takes) on the least busy live helper, as
        ``batch``; False when every helper has died."""
        self._slots.acquire()
        while True:
            with self._lock:
                live = [child for child in self._children if not child.dead]
                if not live:
                    self._slots.release()
                    return False
                child = min(live, key=lambda c: len(c.pending))
            with child.writing:  # frames go out in the order of ``pending``, whole
                with self._lock:
                    if child.dead:
                        continue
                    child.pending.append(batch)  # before writing: a death from here on returns it
                with contextlib.suppress(OSError):  # it died: its reader hands the batch to on_lost
                    write_frame(child.stdin, work)
                return True

    def close(self) -> None:
        """Let the helpers finish what they were sent, then stop them; one that has not exited
        5 s after its input closed (stopped, hung) is killed, and its batches go to on_lost."""
        for child in self._children:
            _close_quietly(child.stdin)
        for child in self._children:
            try:
                child.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        for reader in self._readers:
            reader.join()

    def _start(self, key: Key) -> _Child[Batch]:
        process = subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   env=_helper_env(), close_fds=True, pass_fds=self._pass_fds)
        assert process.stdin is not None and process.stdout is not None
        child: _Child[Batch] = _Child(process, process.stdin, process.stdout)
        with contextlib.suppress(OSError):  # its reader sees it gone
            write_frame(child.stdin, {f.name: getattr(key, f.name) for f in fields(key)})
        return child

    def _read(self, child: _Child[Batch]) -> None:
        try:
            while (results := read_frame(child.stdout)) is not None:
                with self._lock:
                    batch = child.pending.popleft()
                self._slots.release()
                self._on_results(batch, results)
        except (OSError, EOFError, ValueError, IndexError, pickle.UnpicklingError):
            pass  # a cut or garbled stream, or more answers than batches: gone or broken
        finally:
            self._lost(child)

    def _lost(self, child: _Child[Batch]) -> None:
        with self._lock:
            child.dead = True
            lost = list(child.pending)
            child.pending.clear()
        _close_quietly(child.stdout)
        for batch in lost:
            self._slots.release()
            self._on_lost(batch)


def _helper_env() -> dict[str, str]:
    """A step command's environment (PATH, locale: ``drorch.process``), plus where Python lives
    and this drorch first on the path; nothing else."""
    package_root = str(Path(__file__).resolve().parents[2])  # holds drorch/
    python = {name: os.environ[name] for name in _PYTHON_ENV if name in os.environ}
    python["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    return base_environment(python)


def _close_quietly(stream: IO[bytes]) -> None:
    with contextlib.suppress(OSError):
        stream.close()
