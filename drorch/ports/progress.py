"""How long work reports progress; the CLI renders it, the API defaults to silence."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, description: str, total_bytes: int | None = None) -> None:
        """A new phase begins (e.g. one mirror to one target)."""

    def advance(self, nbytes: int, files: int = 0) -> None:
        """``nbytes`` more bytes (and ``files`` more files) are done."""

    def note(self, message: str) -> None:
        """A warning or remark worth showing the operator now."""

    def finish(self) -> None:
        """The current phase is over."""


class NoProgress:
    def start(self, description: str, total_bytes: int | None = None) -> None:
        pass

    def advance(self, nbytes: int, files: int = 0) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def finish(self) -> None:
        pass
