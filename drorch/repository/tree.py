"""Tree blobs: one JSON document per directory, as restic's ``restic.Node`` encodes it.

Modes use Go's ``os.FileMode`` bits (type bits high, permission bits low), so
restic restores what drorch wrote. A tree's ID is the SHA-256 of its JSON plus a
trailing newline; encoding is deterministic (sorted names, fixed key order) so an
unchanged directory yields the same tree and is stored once.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import os
import pwd
import stat
import struct
from functools import lru_cache
from typing import Any

from drorch.ports.errors import IntegrityError
from drorch.repository import jsoncodec
from drorch.repository.goquote import QuoteError, go_quote, go_unquote
from drorch.repository.timefmt import format_ns, parse_ns

GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_NAMED_PIPE = 1 << 25
GO_MODE_SOCKET = 1 << 24
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHAR_DEVICE = 1 << 21
GO_MODE_STICKY = 1 << 20

_SPECIAL_BITS = ((stat.S_ISUID, GO_MODE_SETUID), (stat.S_ISGID, GO_MODE_SETGID),
                 (stat.S_ISVTX, GO_MODE_STICKY))


@lru_cache(maxsize=1024)  # once per file otherwise; a tree holds few distinct modes
def go_mode(st_mode: int) -> int:
    mode = st_mode & 0o777
    for posix, go in _SPECIAL_BITS:
        if st_mode & posix:
            mode |= go
    if stat.S_ISDIR(st_mode):
        mode |= GO_MODE_DIR
    elif stat.S_ISLNK(st_mode):
        mode |= GO_MODE_SYMLINK
    elif stat.S_ISCHR(st_mode):
        mode |= GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE
    elif stat.S_ISBLK(st_mode):
        mode |= GO_MODE_DEVICE
    elif stat.S_ISFIFO(st_mode):
        mode |= GO_MODE_NAMED_PIPE
    elif stat.S_ISSOCK(st_mode):
        mode |= GO_MODE_SOCKET
    return mode


def posix_permissions(mode: int) -> int:
    """Permission and setuid/setgid/sticky bits of a Go mode, for chmod."""
    bits = mode & 0o777
    for posix, go in _SPECIAL_BITS:
        if mode & go:
            bits |= posix
    return bits


def node_type(st_mode: int) -> str | None:
    """restic's node type for a file mode; None for kinds drorch does not archive."""
    if stat.S_ISREG(st_mode):
        return "file"
    if stat.S_ISDIR(st_mode):
        return "dir"
    if stat.S_ISLNK(st_mode):
        return "symlink"
    if stat.S_ISFIFO(st_mode):
        return "fifo"
    if stat.S_ISCHR(st_mode):
        return "chardev"
    if stat.S_ISBLK(st_mode):
        return "dev"
    return None  # sockets: restic records them but restores nothing


@lru_cache(maxsize=256)
def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


@lru_cache(maxsize=256)
def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


def node_from_stat(name: str, st: os.stat_result, kind: str) -> dict[str, Any]:
    """The metadata part of a node; the caller adds content, subtree or linktarget.

    Keys come in restic's order; zero and empty values are left out (but uid and gid).
    Built key by key rather than filtered afterwards: a no-change backup builds one
    node per entry, and this is its costliest Python.
    """
    mtime = format_ns(st.st_mtime_ns)
    node: dict[str, Any] = {"name": name, "type": kind}
    mode = go_mode(st.st_mode)
    if mode:
        node["mode"] = mode
    # Like restic: atime changes on every read, so storing it would make every
    # directory look changed on each run and defeat tree deduplication.
    node["mtime"] = node["atime"] = mtime
    node["ctime"] = format_ns(st.st_ctime_ns)
    node["uid"], node["gid"] = st.st_uid, st.st_gid
    for key, value in (("user", _user(st.st_uid)), ("group", _group(st.st_gid)), ("inode", st.st_ino),
                       ("device_id", st.st_dev), ("links", st.st_nlink)):
        if value:
            node[key] = value
    if kind == "file":
        if st.st_size:
            node["size"] = st.st_size
    elif kind in ("dev", "chardev") and st.st_rdev:
        node["device"] = st.st_rdev  # the encoded dev_t, as restic stores it for mknod
    return node


_SIGNED = struct.Struct("<IqqIIQQQqQ")  # mode, mtime, ctime, uid, gid, inode, device, links, size, rdev


def stat_signature(st: os.stat_result, attrs: list[dict[str, str]], linktarget: str | None) -> bytes:
    """Everything ``node_from_stat``, the xattrs and a link's target put in a node, as bytes.

    Two entries with equal signatures get equal nodes but for a file's content and a
    directory's subtree: content written since shows in mtime and ctime (as restic
    judges files), so an archiver may keep the parent's node for an entry whose
    signature it remembered. Bytes, not a tuple: a memo holds one per entry, and
    ~110 bytes hold what a tuple of ints and strings held in ~340.
    """
    fields = (st.st_mode, st.st_mtime_ns, st.st_ctime_ns, st.st_uid, st.st_gid, st.st_ino, st.st_dev,
              st.st_nlink, st.st_size, st.st_rdev)
    try:
        head = b"\x01" + _SIGNED.pack(*fields)
    except struct.error:  # a time past 2262 or before 1678 (nanoseconds beyond 64 bits)
        head = b"\x02" + repr(fields).encode()
    # NUL never occurs in a user, group or xattr name, a base64 value or a link target
    tail = [_user(st.st_uid), _group(st.st_gid), linktarget or ""]
    for attr in attrs:
        tail += (attr["name"], attr["value"])
    return head + "\0".join(tail).encode("utf-8", "surrogateescape")


def encode_tree(nodes: list[dict[str, Any]]) -> bytes:
    """The tree blob for a directory's nodes; ``content`` is always present, as in restic.

    Names are Go-quoted (``goquote``) and sorted by their bytes, as restic stores them.
    """
    ordered = []
    for node in sorted(nodes, key=lambda n: os.fsencode(n["name"])):
        node = dict(node)
        node["name"] = go_quote(node["name"])
        node.setdefault("content", None)
        ordered.append(node)
    return jsoncodec.dumps({"nodes": ordered}) + b"\n"


_REQUIRED = {"dir": ("subtree",), "file": (), "symlink": ()}


def decode_tree(blob: bytes | bytearray, *, strict: bool = True) -> list[dict[str, Any]]:
    """The nodes of a tree blob, names unquoted; IntegrityError naming the tree if it is malformed.

    Every node has a string ``name`` and ``type``, a directory a ``subtree``, a
    file a ``content`` list (or null). Names stored unquoted by drorch before it
    quoted like restic are taken as they are. ``strict=False`` checks only that
    the blob is a list of nodes: the restorer judges each node itself, so one
    bad entry is named and skipped while its siblings are restored.
    """
    try:
        doc = jsoncodec.loads(blob)
        nodes = doc.get("nodes") if isinstance(doc, dict) else None
        if nodes is None and isinstance(doc, dict):
            nodes = []
        if not isinstance(nodes, list):
            raise ValueError("it holds no list of nodes")
        for index, node in enumerate(nodes):
            if strict:
                _check_node(index, node)
            elif isinstance(node, dict) and isinstance(node.get("name"), str):
                with contextlib.suppress(QuoteError, UnicodeError):
                    node["name"] = go_unquote(node["name"])
    except (ValueError, TypeError) as err:
        tree_id = hashlib.sha256(blob).hexdigest()[:12]
        raise IntegrityError(f"tree {tree_id} is damaged: {err}") from None
    return nodes


def _check_node(index: int, node: Any) -> None:
    if not isinstance(node, dict):
        raise ValueError(f"entry {index} is not an object")
    name = node.get("name")
    if not isinstance(name, str):
        raise ValueError(f"entry {index} has no name")
    try:  # noqa: SIM105 - contextlib.suppress costs ~1 µs, and this runs for every node of every tree
        node["name"] = go_unquote(name)
    except (QuoteError, UnicodeError):
        pass  # written raw by an older drorch
    kind = node.get("type")
    if not isinstance(kind, str):
        raise ValueError(f"entry {name!r} has no type")
    for key in _REQUIRED.get(kind, ()):
        if not isinstance(node.get(key), str) or not node[key]:
            raise ValueError(f"{kind} {name!r} has no {key}")
    content = node.get("content")
    if content is not None and not (isinstance(content, list) and all(isinstance(c, str) for c in content)):
        raise ValueError(f"{kind} {name!r} has a content that is not a list of blob IDs")


def node_problems(nodes: list[dict[str, Any]]) -> list[str]:
    """What ``verify`` reports about a decoded tree: names restore cannot place, names given
    twice (restore would write one entry over another), times that are not times."""
    problems = []
    seen: set[str] = set()
    for node in nodes:
        name = node["name"]
        if "/" in name or name in ("", ".", ".."):
            problems.append(f"entry {name!r} has a name no file can have")
        elif name in seen:
            problems.append(f"the name {name!r} is given to more than one entry")
        seen.add(name)
        for key in ("mtime", "atime", "ctime"):
            if node.get(key) is not None:
                try:
                    parse_ns(node[key])
                except (ValueError, TypeError):
                    problems.append(f"entry {name!r} has a {key} that is not a time: "
                                    f"{str(node[key])[:40]!r}")
    return problems


def node_time_ns(node: dict[str, Any], key: str) -> int:
    """One of a node's times (mtime, atime, ctime); IntegrityError if it is not a time."""
    try:
        return parse_ns(node[key])
    except (ValueError, TypeError) as err:
        raise IntegrityError(f"entry {node.get('name')!r} has a damaged {key}: {err}") from None


def mtime_ns(node: dict[str, Any]) -> int:
    return node_time_ns(node, "mtime") if node.get("mtime") else 0


def same_time(stored: str | None, ns: int) -> bool:
    """Whether a node's RFC 3339 time is ``ns``; compared as instants, so a parent
    snapshot written by restic (another spelling of the same time) still matches."""
    if not stored:
        return False
    try:
        return stored == format_ns(ns) or parse_ns(stored) == ns
    except (ValueError, OverflowError, OSError):  # a time outside what the formatter handles
        return False


def atime_ns(node: dict[str, Any]) -> int:
    return node_time_ns(node, "atime") if node.get("atime") else mtime_ns(node)
