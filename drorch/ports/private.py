"""Directories and files drorch creates are private to the user, whatever the umask.

A repository holds encrypted data, but its key files, lock files and the state
database (run history, hook output) are nobody else's business, and a
world-writable repository lets anyone delete or plant objects. restic creates
repository directories 0700 and files 0600; so does drorch, for the
repository, ``$DRORCH_HOME`` and everything in it. The umask can only take
permission bits away, so creating with 0700/0600 is enough for new files;
directories created for missing parents (``mkdir -p``) get the same mode,
which ``Path.mkdir(parents=True)`` would not give them.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "make_private_dirs", "private_file"]

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dirs(path: Path) -> None:
    """``mkdir -p path`` where every directory created is 0700; existing ones are left alone.

    Raises ``NotADirectoryError``/``FileExistsError`` when a component is a file,
    like ``Path.mkdir``; callers turn that into their own sentence.
    """
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise
        else:
            os.chmod(directory, DIR_MODE)  # a umask can not widen it, but a setgid parent may


def private_file(path: Path) -> None:
    """Create ``path`` 0600 if missing, and take group and other bits off an existing one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
