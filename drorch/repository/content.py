"""Where a file's bytes are: its content blob IDs looked up in the index, offset by offset."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from drorch.ports.errors import IntegrityError
from drorch.repository.pack import DATA, PackedBlob
from drorch.repository.repository import Repository


def content_blobs(repo: Repository, node: dict[str, Any], what: str
                  ) -> Iterator[tuple[int, str, str, PackedBlob]]:
    """(offset in the file, blob ID, pack ID, where in the pack) for each blob of ``node``.

    ``IntegrityError`` naming the blob, ``what`` it belongs to and the target when
    the index does not know a blob: the repository is damaged there.
    """
    offset = 0
    for blob_id in node.get("content") or []:
        found = repo.index.lookup(DATA, blob_id)
        if found is None:
            raise IntegrityError(f"data blob {blob_id[:12]} of {what} is missing from target {repo.name!r}",
                                 hint="run `drorch verify` to see what is damaged")
        pack_id, blob = found
        yield offset, blob_id, pack_id, blob
        offset += blob.plain_length
