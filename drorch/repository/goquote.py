"""Node names the way restic stores them: Go's ``strconv.Quote`` without the outer quotes.

restic's ``Node.MarshalJSON`` quotes a name before JSON-encoding it and
``UnmarshalJSON`` unquotes it (``strconv.Unquote``), so any byte string survives
JSON: ``a"b`` is stored as ``a\\"b``, a newline as ``\\n``, the byte 0xff of a
name that is not UTF-8 as ``\\xff``. A name stored raw with a backslash or a
quote makes restic fail ("Unquote: invalid syntax"), so drorch must quote
exactly like Go. Python holds undecodable name bytes as surrogate escapes
(``os.fsdecode``); they map to ``\\xNN`` and back.
"""

from __future__ import annotations

import os
import unicodedata

_SHORT = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
          "\v": "\\v", "\\": "\\\\", '"': '\\"'}
_UNSHORT = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", '"': '"'}


class QuoteError(ValueError):
    """Text that Go's ``strconv.Unquote`` would refuse."""


def _printable(ch: str) -> bool:
    """Go's ``strconv.IsPrint``: letters, marks, numbers, punctuation, symbols, ASCII space."""
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def go_quote(name: str) -> str:
    """``strconv.Quote(name)`` minus the surrounding quotes; plain names come back unchanged."""
    if name.isascii() and name.isprintable() and "\\" not in name and '"' not in name:
        return name  # the common case, without a per-character loop
    out = []
    for ch in name:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogate escape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _SHORT:
            out.append(_SHORT[ch])
        elif 0xD800 <= code <= 0xDFFF:  # a lone surrogate Go could not hold: U+FFFD
            out.append("\\ufffd")
        elif _printable(ch):
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def go_unquote(text: str) -> str:
    """The name ``go_quote`` made ``text`` from (``strconv.Unquote`` of ``"text"``).

    Raises QuoteError where Go would: a bare quote or newline, an unknown or
    truncated escape, a code point that is no Unicode scalar value.
    """
    if "\\" not in text:
        if '"' in text or "\n" in text:
            raise QuoteError(f"name {text!r} holds an unescaped quote or newline")
        return text
    raw = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in '"\n':
            raise QuoteError(f"name {text!r} holds an unescaped quote or newline")
        if ch != "\\":
            raw += ch.encode("utf-8", "surrogateescape")
            i += 1
            continue
        i, piece = _escape(text, i + 1)
        raw += piece
    return os.fsdecode(bytes(raw))


def _escape(text: str, i: int) -> tuple[int, bytes]:
    """One escape sequence starting after its backslash: (next index, bytes it stands for)."""
    if i >= len(text):
        raise QuoteError(f"name {text!r} ends in a lone backslash")
    kind = text[i]
    if kind in _UNSHORT:
        return i + 1, _UNSHORT[kind].encode()
    digits = {"x": 2, "u": 4, "U": 8}.get(kind)
    if digits is not None:
        value = _number(text, i + 1, digits, 16)
        if kind == "x":
            return i + 1 + digits, bytes([value])
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise QuoteError(f"name {text!r} escapes {value:#x}, which is no Unicode character")
        return i + 1 + digits, chr(value).encode()
    if kind in "01234567":
        value = _number(text, i, 3, 8)
        if value > 255:
            raise QuoteError(f"name {text!r} has an octal escape above 255")
        return i + 3, bytes([value])
    raise QuoteError(f"name {text!r} has an unknown escape \\{kind}")


def _number(text: str, start: int, digits: int, base: int) -> int:
    chunk = text[start:start + digits]
    allowed = "0123456789abcdefABCDEF" if base == 16 else "01234567"
    if len(chunk) != digits or any(c not in allowed for c in chunk):
        raise QuoteError(f"name {text!r} has a truncated escape")
    return int(chunk, base)
