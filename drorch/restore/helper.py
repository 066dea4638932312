"""One helper process of restore: writes the blobs of the packs it is sent.

Run as ``python -m drorch.restore.helper FD [SLOTS_FD]`` (``drorch.helpers.frames.serve``),
FD being the restore target's directory and SLOTS_FD the parent's shared slots, both
inherited. Each batch is one pack: ``(directories, data, slot, length, blobs)``, the
directories as ``Dirs.chains`` gives them, the bytes read from the pack (inline, or
None when they are in ``slot``) and its ``BlobWrite`` list. The answer is ``("written",
flags, warnings)``: a flag per blob (``write_blobs``: True when intact and written
everywhere) and the metadata it could not set on whole files; or ``("error", errno,
strerror, filename)`` when writing failed. Paths are opened below FD without
following links, as everywhere in restore (``drorch.restore.fs``).
"""

from __future__ import annotations

import sys
from typing import Any

from drorch.helpers.frames import serve
from drorch.repository.crypto import Key
from drorch.restore.fs import DirFds, Dirs
from drorch.restore.packs import BlobWrite, NotSet, attach_slots, slot_view, write_blobs

Work = tuple[dict[int, tuple[int, str]], bytes | None, int | None, int, list[BlobWrite]]


class PackHelper:
    """The directories this helper has been told of, their open descriptors, and the
    parent's shared slots (``drorch.restore.packs.SharedSlots``) if it has them."""

    def __init__(self, root_fd: int, slots_fd: int | None) -> None:
        self.dirs = Dirs()
        self.fds = DirFds(root_fd, self.dirs)
        self.slots = attach_slots(slots_fd) if slots_fd is not None else None

    def write(self, key: Key, work: Work) -> tuple[Any, ...] | None:
        chains, inline, slot, length, blobs = work
        self.dirs.learn(chains)
        if inline is not None:
            data = memoryview(inline)
        elif self.slots is not None and slot is not None:
            data = slot_view(self.slots, slot, length)
        else:  # no answer the parent can use: it writes the pack itself
            return None
        warnings: list[NotSet] = []
        try:
            return ("written", list(write_blobs(key, data, blobs, self.fds, warnings)), warnings)
        except OSError as err:
            return ("error", err.errno, err.strerror, err.filename)


if __name__ == "__main__":
    serve(PackHelper(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None).write)
