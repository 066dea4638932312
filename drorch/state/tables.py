"""The local state store: a record of runs, in SQLite under ``$DRORCH_HOME``.

It is a journal and a cache, never the truth about data: the repositories are.
Deleting the database loses history only; the next run recreates it. So a
database that is damaged (garbage, a truncated or foreign file) never stops a
backup: it is moved aside as ``state.db.broken-TIMESTAMP``, a note on stderr
says so, and a new one is started. ``$DRORCH_HOME`` is created 0700 and
``state.db`` 0600 (``drorch.ports.private``): hook output and run history stay the user's.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drorch.ports.errors import DrorchError, UsageError
from drorch.ports.private import make_private_dirs, private_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    policy TEXT NOT NULL,
    mirror TEXT,
    target TEXT,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    snapshot TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_mirror ON runs (policy, mirror, target, started);
"""


def home() -> Path:
    """``$DRORCH_HOME`` (default ``$XDG_STATE_HOME/drorch``), created private if missing.

    ``UsageError`` (exit 2) when it is a file or cannot be created: that is the
    operator's environment, and every command needs it.
    """
    configured = os.environ.get("DRORCH_HOME")
    if configured:
        path = Path(configured)
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        path = Path(base) / "drorch"
    ensure_state_dir(path)
    return path


def ensure_state_dir(path: Path) -> None:
    """Create the state directory ``path`` (0700); one sentence when that is impossible."""
    try:
        make_private_dirs(path)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"the state directory {path} ($DRORCH_HOME) is a file, not a directory",
                         hint="point DRORCH_HOME at a directory, or move the file away") from None
    except OSError as err:
        raise UsageError(f"cannot create the state directory {path} ($DRORCH_HOME): "
                         f"{err.strerror or err}", hint="point DRORCH_HOME at a writable directory"
                         ) from None


@dataclass(frozen=True)
class RunRecord:
    id: int
    kind: str
    policy: str
    mirror: str | None
    target: str | None
    started: float
    finished: float | None
    status: str
    snapshot: str | None
    detail: dict[str, Any]


class StateTables:
    """Some tables of the state database, ``$DRORCH_HOME/state.db``; ``schema`` creates them.

    Every ``_db()`` block is one transaction, committed on success and rolled back
    on error, and synced (WAL, synchronous=FULL): journals written before and after
    each step must survive a crash of the process or the machine.
    """

    schema = ""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or home() / "state.db"
        ensure_state_dir(self.path.parent)
        try:
            self._create()
        except sqlite3.OperationalError as err:  # locked, unwritable: not damage
            raise DrorchError(f"cannot open the state database {self.path}: {err}",
                              hint="check the permissions of $DRORCH_HOME") from None
        except sqlite3.DatabaseError as err:
            self._set_aside(err)
            self._create()

    def _create(self) -> None:
        private_file(self.path)
        with self._db() as db:
            db.executescript(self.schema)

    def _set_aside(self, err: sqlite3.DatabaseError) -> None:
        """Move a damaged database (and its WAL) aside and say so; history restarts empty."""
        aside = self.path.with_name(f"{self.path.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}")
        for suffix in ("-wal", "-shm"):
            wal = self.path.with_name(self.path.name + suffix)
            if wal.exists():
                os.replace(wal, aside.with_name(aside.name + suffix))
        os.replace(self.path, aside)
        sys.stderr.write(f"note: the state database {self.path} is damaged ({err}); moved it to "
                         f"{aside.name} and started a new one (only run history is lost; "
                         "the repositories hold the data)\n")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            with db:
                yield db
        finally:
            db.close()


class StateStore(StateTables):
    """The record of runs (apply, per mirror)."""

    schema = _SCHEMA

    def start_run(self, kind: str, policy: str, mirror: str | None = None,
                  target: str | None = None) -> int:
        with self._db() as db:
            cur = db.execute(
                "INSERT INTO runs (kind, policy, mirror, target, started, status) "
                "VALUES (?, ?, ?, ?, ?, 'running')", (kind, policy, mirror, target, time.time()))
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, snapshot: str | None = None,
                   detail: dict[str, Any] | None = None) -> None:
        with self._db() as db:
            db.execute("UPDATE runs SET finished = ?, status = ?, snapshot = ?, detail = ? "
                       "WHERE id = ?",
                       (time.time(), status, snapshot, json.dumps(detail or {}), run_id))

    def runs(self, policy: str | None = None, limit: int = 100) -> list[RunRecord]:
        query = "SELECT * FROM runs" + (" WHERE policy = ?" if policy else "")
        query += " ORDER BY id DESC LIMIT ?"
        args: tuple[Any, ...] = (policy, limit) if policy else (limit,)
        with self._db() as db:
            rows = db.execute(query, args).fetchall()
        return [RunRecord(*row[:9], json.loads(row[9] or "{}")) for row in rows]  # type: ignore[call-arg]
