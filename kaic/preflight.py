"""Checks on output locations, made before any work starts: a run never finds out at its end that it
cannot write where it was told to. Each failure is one ConfigError line naming the value and its source."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from kaic.errors import ConfigError


def writable_dir(path: Path, source: str, create: bool = True) -> Path:
    """``path`` is (or can be made) a folder kaic can write in; probed by writing a file there."""
    path = path.expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{source} {path}: exists and is not a folder")
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        probe = path / f".kaic-write-test-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{source} {path}: not writable ({exc.strerror or exc})") from None
    return path.resolve()


def writable_file(path: Path, source: str) -> Path:
    """``path`` can be written as a file: not a folder, and its folder exists and takes a new file
    (probed with a temporary file, removed at once: a refused run leaves nothing behind)."""
    path = path.expanduser()
    if path.is_dir():
        raise ConfigError(f"{source} {path}: is a folder, not a file")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(f"{source} {path}: folder {parent} does not exist")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{source} {path}: not writable")
    try:
        probe = parent / f".kaic-write-test-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{source} {path}: folder {parent} not writable ({exc.strerror or exc})") from None
    return path


def creatable_dir(path: Path, source: str) -> Path:
    """``path`` is a folder, or can be created: its nearest existing ancestor is a folder that takes a
    new file (probed and removed). Nothing is created, so a run refused later leaves nothing behind."""
    path = path.expanduser().absolute()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{source} {path}: exists and is not a folder")
        return writable_dir(path, source, create=False)
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{source} {path}: {ancestor} is a file, not a folder")
    try:
        writable_dir(ancestor, source, create=False)
    except ConfigError:
        raise ConfigError(f"{source} {path}: cannot be created ({ancestor} is not writable)") from None
    return path
