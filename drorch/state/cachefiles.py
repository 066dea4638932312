"""Local cache files: a magic line, a JSON header line, then a binary body; written atomically.

Block maps (``sources.blockmap``) and export manifests (``restore.blocks``)
are caches under ``$DRORCH_HOME``: losing or tearing one makes a run slower,
never wrong. So reading never raises (a missing, torn or foreign file is
``None``) and writing is best effort (temporary name, then rename).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from drorch.ports.private import FILE_MODE, make_private_dirs
from drorch.state.tables import home


def source_cache_dir(kind: str, repository_id: str, source: Path) -> Path:
    """``$DRORCH_HOME/<kind>/<repository id>/<source path key>``: one source's caches of one kind."""
    return home() / kind / repository_id / hashlib.sha256(str(source).encode()).hexdigest()[:16]


def keep_newest(folder: Path, pattern: str, keep: int) -> None:
    """Delete all but the ``keep`` most recently written files matching ``pattern``."""
    with contextlib.suppress(OSError):
        files = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[keep:]:
            old.unlink(missing_ok=True)


def read_cache_file(path: Path, magic: bytes) -> tuple[dict[str, Any], bytes] | None:
    """(header, body) of a cache file, or None when it is missing, torn or not ours."""
    try:
        raw = path.read_bytes()
        if not raw.startswith(magic):
            return None
        end = raw.index(b"\n", len(magic))
        header = json.loads(raw[len(magic):end])
    except (OSError, ValueError):
        return None
    return (header, raw[end + 1:]) if isinstance(header, dict) else None


def write_cache_file(path: Path, magic: bytes, header: dict[str, Any], body: bytes) -> bool:
    """Write atomically, private (0700 directories, 0600 file, whatever the umask: a cache
    names the source's files); False (and nothing half-written) when it cannot be written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        make_private_dirs(path.parent)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
        with os.fdopen(fd, "wb") as out:
            out.write(magic + json.dumps(header).encode() + b"\n" + body)
        os.replace(tmp, path)
        return True
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # a full disk leaves no half-written cache behind
        return False
