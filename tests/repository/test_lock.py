from __future__ import annotations

import os
import subprocess

import pytest

from drorch.ports.errors import RepositoryLocked
from drorch.repository.layout import FileType
from drorch.repository.lock import RepositoryLock
from drorch.repository.repository import Repository


def _locks(repo: Repository) -> list[str]:
    return [i for i, _ in repo.list_ids(FileType.LOCK)]


def test_exclusive_lock_refuses_a_second_holder_with_a_clear_sentence(repo: Repository) -> None:
    expected = f"busy: an exclusive lock held by PID {os.getpid()}"
    with RepositoryLock(repo, exclusive=True).acquire(), pytest.raises(RepositoryLocked, match=expected):
        RepositoryLock(repo, exclusive=False).acquire()
    assert _locks(repo) == []


def test_shared_locks_coexist(repo: Repository) -> None:
    with RepositoryLock(repo, exclusive=False).acquire(), RepositoryLock(repo, exclusive=False).acquire():
        assert len(_locks(repo)) == 2


def test_lock_of_a_dead_process_is_stale_and_removed(repo: Repository, monkeypatch) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    monkeypatch.setattr(os, "getpid", lambda: dead.pid)
    RepositoryLock(repo, exclusive=True).acquire()  # never released: the process "died"
    monkeypatch.undo()
    with RepositoryLock(repo, exclusive=True).acquire():
        assert len(_locks(repo)) == 1
