"""The run journal: every runbook run, step and event, in the state database.

Tables live in the same SQLite file as ``drorch.state.tables`` (``$DRORCH_HOME/state.db``)
and are written before and after every step, each write its own committed
transaction (WAL, synchronous), so after ``kill -9`` the journal says exactly
which steps finished (with their outputs), which one was running, and what
each undo did. ``runbook resume`` reads nothing else.

A run in progress holds an exclusive ``flock`` on ``runbook-locks/RUN.lock``
next to the database. The kernel drops it when the process dies, however it
dies, so "is this run still going?" never depends on a PID that may have
been reused.

Approvals are one-time tokens: ``issue_approval`` stores one for a run, and
the first ``approve`` gate of that run that asks consumes it; a token never
passes two gates.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from drorch.ports.errors import RunNotResumable, UsageError
from drorch.state.tables import StateTables

__all__ = ["Event", "Journal", "RunRow", "StepRow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runbook_runs (
    id TEXT PRIMARY KEY,
    runbook TEXT NOT NULL,
    file TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    policy TEXT,
    vars TEXT NOT NULL,
    status TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    rto_s REAL,
    rto_objective_s REAL,
    failed_step TEXT,
    error TEXT,
    host TEXT,
    pid INTEGER
);
CREATE TABLE IF NOT EXISTS runbook_steps (
    run_id TEXT NOT NULL,
    phase TEXT NOT NULL,
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    started REAL,
    finished REAL,
    outputs TEXT,
    error TEXT,
    tail TEXT,
    pid INTEGER,
    PRIMARY KEY (run_id, phase, idx)
);
CREATE TABLE IF NOT EXISTS runbook_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    at REAL NOT NULL,
    step TEXT,
    phase TEXT,
    event TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS runbook_events_by_run ON runbook_events (run_id, seq);
CREATE TABLE IF NOT EXISTS runbook_approvals (
    token TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    step TEXT,
    issued REAL NOT NULL,
    issued_by TEXT NOT NULL,
    consumed REAL,
    consumed_step TEXT
);
"""

_RUN_COLUMNS = ("id, runbook, file, file_sha256, policy, vars, status, started, finished, rto_s, "
                "rto_objective_s, failed_step, error, host, pid")


@dataclass(frozen=True)
class RunRow:
    id: str
    runbook: str
    file: str
    file_sha256: str
    policy: str | None
    vars: dict[str, str]
    status: str
    started: float
    finished: float | None
    rto_s: float | None
    rto_objective_s: float | None
    failed_step: str | None
    error: str | None
    host: str | None
    pid: int | None


@dataclass(frozen=True)
class StepRow:
    phase: str
    idx: int
    name: str
    action: str
    state: str
    attempts: int
    started: float | None
    finished: float | None
    outputs: dict[str, Any]
    error: str | None
    tail: str | None
    pid: int | None


@dataclass(frozen=True)
class Event:
    at: float
    step: str | None
    phase: str | None
    event: str
    detail: str | None


class Journal(StateTables):
    """Runbook runs in the state database (see the module docstring)."""

    schema = _SCHEMA

    # ------------------------------------------------------------------------ runs

    def create_run(self, *, runbook: str, file: str, file_sha256: str, policy: str | None,
                   variables: dict[str, str]) -> str:
        """Record a new run and return its ID (8 hex digits, unique in this database)."""
        with self._db() as db:
            while True:
                run_id = secrets.token_hex(4)
                if not db.execute("SELECT 1 FROM runbook_runs WHERE id = ?", (run_id,)).fetchone():
                    break
            db.execute(f"INSERT INTO runbook_runs ({_RUN_COLUMNS}) VALUES "
                       "(?, ?, ?, ?, ?, ?, 'running', ?, NULL, NULL, NULL, NULL, NULL, ?, ?)",
                       (run_id, runbook, file, file_sha256, policy, json.dumps(variables),
                        time.time(), socket.gethostname(), os.getpid()))
        return run_id

    def run(self, run_id: str) -> RunRow:
        """The run with this ID or unique ID prefix; ``UsageError`` naming recent runs otherwise."""
        with self._db() as db:
            rows = db.execute(f"SELECT {_RUN_COLUMNS} FROM runbook_runs WHERE id LIKE ? "
                              "ORDER BY started", (run_id.lower() + "%",)).fetchall()
        if len(rows) == 1:
            row = rows[0]
            return RunRow(*row[:5], json.loads(row[5]), *row[6:])  # type: ignore[arg-type, call-arg]
        if rows:
            raise UsageError(f"run ID '{run_id}' is ambiguous", hint="give more of its digits")
        recent = ", ".join(r.id for r in self.runs(limit=5)) or "none yet"
        raise UsageError(f"no runbook run '{run_id}' in {self.path}", hint=f"recent runs: {recent}")

    def runs(self, limit: int = 20) -> list[RunRow]:
        with self._db() as db:
            rows = db.execute(f"SELECT {_RUN_COLUMNS} FROM runbook_runs ORDER BY started DESC "
                              "LIMIT ?", (limit,)).fetchall()
        return [RunRow(*r[:5], json.loads(r[5]), *r[6:]) for r in rows]  # type: ignore[arg-type, call-arg]

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set run columns (``status``, ``finished``, ``rto_s``, ``failed_step``, ``error``...)."""
        allowed = {"status", "finished", "rto_s", "rto_objective_s", "failed_step", "error",
                   "file_sha256", "pid", "host"}
        assert set(fields) <= allowed, fields
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._db() as db:
            db.execute(f"UPDATE runbook_runs SET {assignments} WHERE id = ?", (*fields.values(), run_id))

    # ----------------------------------------------------------------------- steps

    def steps(self, run_id: str) -> dict[tuple[str, int], StepRow]:
        """Every step row of the run, keyed by (phase, index)."""
        with self._db() as db:
            rows = db.execute("SELECT phase, idx, name, action, state, attempts, started, finished, "
                              "outputs, error, tail, pid FROM runbook_steps WHERE run_id = ? "
                              "ORDER BY phase, idx", (run_id,)).fetchall()
        out = {}
        for row in rows:
            step = StepRow(*row[:8], json.loads(row[8] or "{}"), *row[9:])  # type: ignore[arg-type, call-arg]
            out[(step.phase, step.idx)] = step
        return out

    def step_state(self, run_id: str, phase: str, idx: int, name: str, action: str, state: str, *,
                   attempts: int | None = None, outputs: dict[str, Any] | None = None,
                   error: str | None = None, tail: str | None = None) -> None:
        """Write one step's state; ``running`` stamps the start, final states the finish."""
        now = time.time()
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO runbook_steps (run_id, phase, idx, name, action, state) "
                       "VALUES (?, ?, ?, ?, ?, 'pending')", (run_id, phase, idx, name, action))
            sets = ["state = ?", "name = ?", "action = ?"]
            args: list[Any] = [state, name, action]
            if state == "running":
                sets.append("started = COALESCE(started, ?)")
                args.append(now)
            if state in ("done", "failed", "skipped"):
                sets.append("finished = ?")
                args.append(now)
            for column, value in (("attempts", attempts), ("error", error), ("tail", tail)):
                if value is not None:
                    sets.append(f"{column} = ?")
                    args.append(value)
            if outputs is not None:
                sets.append("outputs = ?")
                args.append(json.dumps(outputs, default=str))
            db.execute(f"UPDATE runbook_steps SET {', '.join(sets)} WHERE run_id = ? AND phase = ? "
                       "AND idx = ?", (*args, run_id, phase, idx))

    def step_pid(self, run_id: str, phase: str, idx: int, pid: int) -> None:
        """Remember the child process a step started (a script), for resume's warning."""
        with self._db() as db:
            db.execute("UPDATE runbook_steps SET pid = ? WHERE run_id = ? AND phase = ? AND idx = ?",
                       (pid, run_id, phase, idx))

    # ---------------------------------------------------------------------- events

    def event(self, run_id: str, event: str, *, step: str | None = None, phase: str | None = None,
              detail: str | None = None, at: float | None = None) -> float:
        at = time.time() if at is None else at
        with self._db() as db:
            db.execute("INSERT INTO runbook_events (run_id, at, step, phase, event, detail) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (run_id, at, step, phase, event, detail))
        return at

    def timeline(self, run_id: str) -> list[Event]:
        with self._db() as db:
            rows = db.execute("SELECT at, step, phase, event, detail FROM runbook_events "
                              "WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()
        return [Event(*row) for row in rows]

    # ------------------------------------------------------------------- approvals

    def issue_approval(self, run_id: str, step: str | None) -> str:
        """A one-time token that lets one approve gate of the run (``step`` if given) pass."""
        token = secrets.token_urlsafe(9)
        who = f"{getpass.getuser()}@{socket.gethostname()}"
        with self._db() as db:
            db.execute("INSERT INTO runbook_approvals (token, run_id, step, issued, issued_by) "
                       "VALUES (?, ?, ?, ?, ?)", (token, run_id, step, time.time(), who))
        return token

    def consume_approval(self, run_id: str, step: str) -> str | None:
        """Take one unused token for this gate; returns who issued it, or None."""
        with self._db() as db:
            row = db.execute("SELECT token, issued_by FROM runbook_approvals WHERE run_id = ? AND "
                             "consumed IS NULL AND (step IS NULL OR step = ?) ORDER BY issued LIMIT 1",
                             (run_id, step)).fetchone()
            if row is None:
                return None
            taken = db.execute("UPDATE runbook_approvals SET consumed = ?, consumed_step = ? WHERE "
                               "token = ? AND consumed IS NULL", (time.time(), step, row[0])).rowcount
        if not taken:
            return None  # another gate took it first; a token passes one gate only
        return f"{row[1]} (token {row[0][:4]}…)"

    # ------------------------------------------------------------------------ lock

    @contextlib.contextmanager
    def lock(self, run_id: str) -> Iterator[None]:
        """Hold the run's lock; ``RunNotResumable`` if another live process holds it."""
        folder = self.path.parent / "runbook-locks"
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f"{run_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunNotResumable(f"run {run_id} is in progress in another process",
                                      hint="wait for it, or stop that process first") from None
            yield
        finally:
            os.close(fd)

    def is_locked(self, run_id: str) -> bool:
        try:
            with self.lock(run_id):
                return False
        except RunNotResumable:
            return True
