"""What a helper process and its parent speak: frames of ``uint32le length || pickle``.

A child (``serve``) reads the repository key from its first frame on stdin, then
answers each batch frame with one result frame on stdout, in order, until stdin
closes. It ignores SIGINT: the parent decides what an interrupt stops.
"""

from __future__ import annotations

import pickle
import signal
import struct
import sys
from collections.abc import Callable
from typing import IO, Any

from drorch.gctuning import tune_collector
from drorch.repository.crypto import Key

_LENGTH = struct.Struct("<I")


def write_frame(stream: IO[bytes], value: object) -> None:
    body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(body)))
    stream.write(body)  # apart from the header: joining them would copy a pack once more
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next value, or None at a clean end of stream; EOFError when cut mid-frame."""
    head = stream.read(_LENGTH.size)
    if not head:
        return None
    if len(head) < _LENGTH.size:
        raise EOFError("helper stream ended inside a frame header")
    (length,) = _LENGTH.unpack(head)
    body = stream.read(length)
    if len(body) < length:
        raise EOFError("helper stream ended inside a frame")
    return pickle.loads(body)


def serve(handle: Callable[[Key, Any], object]) -> None:
    """A child's loop: the key, then ``handle(key, batch)`` answered for every batch."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_collector()
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    key_fields = read_frame(source)
    if key_fields is None:
        return
    key = Key(**key_fields)
    while (batch := read_frame(source)) is not None:
        try:
            write_frame(sink, handle(key, batch))
        except BrokenPipeError:  # the parent is gone; nothing to hand back
            return
