"""One helper process of the archiver: reads, hashes, compresses and seals small files.

The archiver sends batches of small files to a few of these processes
(``drorch.archiver.helpers``), each with a GIL of its own, and only copies the
sealed blobs they return into its packs; why, with numbers: ``drorch.archiver.smallfiles``.

Run as ``python -m drorch.archiver.helper``; it speaks frames (``uint32le length ||
pickle``) on stdin and stdout. The first frame in is the repository key, then each
frame in is a batch ``[(path, expected size), ...]`` and gets one frame out: a
result per file, in order (see ``seal_file``). It exits when stdin closes; it
ignores SIGINT, since the archiver decides what an interrupt stops.
"""

from __future__ import annotations

import hashlib
import pickle
import signal
import struct
import sys
from typing import IO, Any

from drorch.archiver.reading import read_small_file
from drorch.repository.crypto import Key
from drorch.repository.repository import encode_blob

# ("blob", id, sealed, uncompressed length, plain length, incompressible) | ("empty",)
# | ("grew",): longer than listed, the archiver reads it itself | ("error", errno, strerror)
Result = tuple[Any, ...]
_LENGTH = struct.Struct("<I")


def seal_file(key: Key, path: str, expected: int) -> Result:
    """What storing one small file takes, except claiming its place in a pack."""
    try:
        data = read_small_file(path, expected)
    except OSError as err:
        return ("error", err.errno, err.strerror)
    if data is None:
        return ("grew",)
    if not data:
        return ("empty",)
    payload, uncompressed_length, incompressible = encode_blob(data)
    return ("blob", hashlib.sha256(data).hexdigest(), key.seal(payload), uncompressed_length,
            len(data), incompressible)


def write_frame(stream: IO[bytes], value: object) -> None:
    body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(body)) + body)
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


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    key_fields = read_frame(source)
    if key_fields is None:
        return
    key = Key(**key_fields)
    while (batch := read_frame(source)) is not None:
        try:
            write_frame(sink, [seal_file(key, path, expected) for path, expected in batch])
        except BrokenPipeError:  # the archiver is gone; nothing to hand back
            return


if __name__ == "__main__":
    main()
