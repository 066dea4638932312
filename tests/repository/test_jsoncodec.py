"""Trees and index files go through orjson (``drorch.repository.jsoncodec``): same documents,
read by the standard library and restic alike, and what orjson cannot write still written."""

from __future__ import annotations

import json
import os

import pytest

from drorch.repository import jsoncodec
from drorch.repository.tree import decode_tree, encode_tree


def _node(name: str, **extra: object) -> dict:
    return {"name": name, "type": "file", "mode": 420, "content": ["ab" * 32], **extra}


def test_a_tree_round_trips_and_the_standard_library_reads_it() -> None:
    nodes = [_node("plain"), _node("café ✓"), _node('quote"and\\slash')]
    blob = encode_tree(nodes)
    assert json.loads(blob) == jsoncodec.loads(blob)
    assert [n["name"] for n in decode_tree(blob)] == sorted(
        ["plain", "café ✓", 'quote"and\\slash'], key=os.fsencode)


def test_what_orjson_refuses_is_written_by_the_standard_library() -> None:
    undecodable = os.fsdecode(b"bad-\xff-name")  # a lone surrogate in the str
    big = {"inode": 2**70, "link": undecodable}
    for doc in (big, {"nodes": [{"name": "x", "linktarget": undecodable}]}):
        written = jsoncodec.dumps(doc)
        assert json.loads(written) == doc


def test_documents_the_standard_library_and_go_wrote_decode_the_same() -> None:
    go_style = b'{"nodes":[{"name":"a\\u003cb\\u0026c","type":"file","content":null}]}\n'
    assert jsoncodec.loads(go_style) == json.loads(go_style)
    ascii_escaped = json.dumps({"name": "café"}).encode()
    assert jsoncodec.loads(ascii_escaped) == {"name": "café"}


@pytest.mark.parametrize("damaged", [b"", b"{", b'{"nodes": [}', b"\xff\xfe", b"NaN"])
def test_damaged_input_is_a_value_error(damaged: bytes) -> None:
    with pytest.raises(ValueError):
        jsoncodec.loads(damaged)
