"""What ``plan`` checks about a source before anything runs: does its path exist as its type says."""

from __future__ import annotations

import os
import stat

from drorch.policy import Source


def source_problem(source: Source) -> str | None:
    """One sentence when the source cannot be read as its type says; None when it looks right.

    With ``snapshot: command`` the pre hook supplies the path to read, so only the
    type of what it prints can be checked, later, when it runs.
    """
    if source.consistency.snapshot == "command":
        return None
    try:
        mode = os.stat(source.path).st_mode
    except FileNotFoundError:
        kind = " or is not a directory" if source.type == "directory" else ""
        return f"source path {source.path} does not exist{kind}"
    except OSError as err:
        return f"source path {source.path} cannot be read: {err.strerror or err}"
    if source.type == "directory" and not stat.S_ISDIR(mode):
        return f"source path {source.path} does not exist or is not a directory"
    if source.type == "image" and not stat.S_ISREG(mode):
        return f"source path {source.path} is not a disk image file"
    if source.type == "volume" and not stat.S_ISBLK(mode):
        return f"source path {source.path} is not a block device"
    return None
