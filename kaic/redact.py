"""Secrets never printed: every value of a secret variable (kaic/env.py, ``secret=True``, and the Argo
token file's contents) is replaced by ``***`` in anything kaic writes to its own stdout and stderr.

The CLI wraps both streams once (`guard_streams`); code that builds a message from foreign text (an
exception from a client library) can call `redact` itself.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import TextIO

from kaic import env

MASK = "***"
MIN_LEN = 4  # shorter values would mask ordinary words


def secret_values() -> list[str]:
    """Every secret value set in the environment, longest first, also each of its lines."""
    values: set[str] = set()
    for var in env.ALL:
        raw = var.get() if var.secret else None
        if raw:
            values.add(raw)
    token_file = env.KAIC_ARGO_TOKEN_FILE.get()
    if token_file:
        with contextlib.suppress(OSError):
            values.add(Path(token_file).expanduser().read_text(errors="replace"))
    pieces: set[str] = set()
    for v in values:
        pieces.add(v)
        pieces.add(v.strip())
        pieces.update(line.strip() for line in v.splitlines())
    return sorted((p for p in pieces if len(p) >= MIN_LEN), key=len, reverse=True)


def redact(text: str, values: list[str] | None = None) -> str:
    for v in values if values is not None else secret_values():
        if v in text:
            text = text.replace(v, MASK)
    return text


class RedactingStream(io.TextIOBase):
    """A text stream that masks secret values before they reach the real stream (line buffered)."""

    def __init__(self, inner: TextIO, values: list[str]) -> None:
        self.inner, self.values = inner, values
        self._pending = ""

    def write(self, s: str) -> int:
        self._pending += s
        if "\n" in self._pending:
            done, _, self._pending = self._pending.rpartition("\n")
            self.inner.write(redact(done + "\n", self.values))
        return len(s)

    def flush(self) -> None:
        if self._pending:
            self.inner.write(redact(self._pending, self.values))
            self._pending = ""
        self.inner.flush()

    def fileno(self) -> int:
        return self.inner.fileno()

    def isatty(self) -> bool:
        return self.inner.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.inner.encoding

    def __getattr__(self, name: str) -> object:  # buffer, reconfigure...: the real stream's
        return getattr(self.inner, name)


def guard_streams() -> None:
    """Wrap sys.stdout and sys.stderr when any secret is set (nothing to do otherwise)."""
    values = secret_values()
    if not values:
        return
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout, values)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr, values)
