"""The pure parts of kaic's launch policy (kaic/localproc.py, kaic/guard.py): the owner mark each launched
process carries in its environment, written, parsed and found in an environment block."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kaic import guard, localproc

pytestmark = pytest.mark.unit

def test_owner_mark_round_trips_with_a_home_that_has_spaces(tmp_path: Path) -> None:
    home = tmp_path / "my home"
    mark = localproc.parse_mark(localproc.owner_mark(home))
    assert mark == (os.getpid(), localproc.owner()[1], home)


def test_owner_mark_names_the_home_absolutely(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    mark = localproc.parse_mark(localproc.owner_mark(Path("rel")))
    assert mark is not None
    assert mark[2] == tmp_path / "rel"


@pytest.mark.parametrize("value", ["", "12", "12 1.5", "12 1.5 ", "x 1.5 /h", "12 y /h"])
def test_a_malformed_mark_is_not_an_owner(value: str) -> None:
    assert localproc.parse_mark(value) is None


def test_the_mark_is_read_from_an_environment_block() -> None:
    block = b"PATH=/bin\0KAIC_OWNER_X=no\0KAIC_OWNER=12 1.5 /h o/me\0LANG=C\0"
    assert guard.mark_in(block) == "12 1.5 /h o/me"
    assert guard.mark_in(b"PATH=/bin\0KAIC_OWNER_X=no\0") is None
    assert guard.mark_in(b"") is None  # a zombie's


def test_every_mark_of_this_process_begins_with_what_its_guard_looks_for(tmp_path: Path) -> None:
    prefix = localproc.owner_prefix()
    assert localproc.owner_mark(tmp_path).startswith(prefix)
    assert not localproc.owner_mark(tmp_path).startswith(prefix.replace(str(os.getpid()), str(os.getpid() + 1), 1))
