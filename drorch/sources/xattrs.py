"""Extended attributes in restic's node form: ``extended_attributes: [{name, value}]``.

restic records every attribute a file carries (``user.*``, ``security.*`` such as
SELinux labels and file capabilities, ``trusted.*`` as root, and POSIX ACLs, which
Linux exposes as ``system.posix_acl_access`` / ``system.posix_acl_default``);
each value is Go ``[]byte``, which encoding/json writes as standard base64. drorch
reads and writes the same field, so either tool restores what the other recorded.

Attributes are listed sorted by name: an unchanged file then yields the same node
and its directory the same tree. Reading never fails a backup (a file system
without xattrs simply has none); writing reports the names it could not set.
"""

from __future__ import annotations

import base64
import errno
import os
from typing import Any

Attribute = dict[str, str]

# Not something the file carries: the file system does not support xattrs, or the
# attribute vanished between listing and reading it.
_ABSENT = (errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENODATA, errno.ENOENT)


def read(path: str | int, *, follow_symlinks: bool = False) -> list[Attribute]:
    """The attributes of ``path`` (a path or an open descriptor), in node form, sorted."""
    follow_symlinks = follow_symlinks or isinstance(path, int)  # a descriptor is the file itself
    try:
        names = os.listxattr(path, follow_symlinks=follow_symlinks)
    except OSError:
        return []  # unsupported here, or not permitted: the rest of the node still counts
    attrs = []
    for name in sorted(names):
        try:
            value = os.getxattr(path, name, follow_symlinks=follow_symlinks)
        except OSError:
            continue
        attrs.append({"name": name, "value": base64.b64encode(value).decode("ascii")})
    return attrs


def of_node(node: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(name, value) pairs recorded in a node; entries that do not decode are left out."""
    pairs = []
    for attr in node.get("extended_attributes") or []:
        try:
            pairs.append((str(attr["name"]), base64.b64decode(attr.get("value") or "")))
        except (KeyError, TypeError, ValueError):
            continue
    return pairs


def write(path: str | int, node: dict[str, Any], *, follow_symlinks: bool = False) -> list[str]:
    """Set every attribute a node records on ``path``; returns the names that could not be set.

    Existing attributes not in the node are left alone (restic does the same).
    """
    failed = []
    follow = follow_symlinks or isinstance(path, int)  # a descriptor is the file itself
    for name, value in of_node(node):
        try:
            os.setxattr(path, name, value, follow_symlinks=follow)
        except OSError as err:
            failed.append(f"{name} ({err.strerror or errno.errorcode.get(err.errno or 0, err)})")
    return failed
