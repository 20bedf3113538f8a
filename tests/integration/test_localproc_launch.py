"""kaic's launch policy with real processes: what `localproc.launch` starts dies with its starter, even on
SIGKILL (the starter's guard kills it, and what it started in its own session too), and what a dead
starter left that its guard could not kill is found by its owner mark and stopped by the next
`reap_orphans` of its home only."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from kaic import localproc

pytestmark = pytest.mark.integration

ROOT = str(Path(__file__).resolve().parents[2])

# A starter that launches `sleep 300` and prints its pid; "nested": a shell that starts the sleep in a new
# session of its own (out of reach of a kill of the shell's group); "bare": marked as a launch marks it, but
# with no guard, as when the guard was killed with its starter.
STARTER = """
import os, subprocess, sys, time
from pathlib import Path
from kaic import localproc
home, how = Path(sys.argv[1]), sys.argv[2]
if how in ("launch", "nested"):
    argv = ["sleep", "300"] if how == "launch" else ["sh", "-c", "setsid sleep 300 & echo $! >&2; wait"]
    p = localproc.launch(argv, home=home, env=None, cwd=None, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if how == "nested":
        p = type("P", (), {"pid": int(p.stderr.readline())})
else:
    p = subprocess.Popen(["sleep", "300"], start_new_session=True, stdin=subprocess.DEVNULL,
                         env={**os.environ, localproc.OWNER_VAR: localproc.owner_mark(home)})
print(p.pid, flush=True)
if how != "bare":
    time.sleep(300)
"""


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pid: int, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def starter(home: Path, how: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc = subprocess.Popen([sys.executable, "-c", STARTER, str(home), how], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.stdout is not None
    pid = int(proc.stdout.readline())
    try:
        yield proc, pid
    finally:
        proc.kill()
        proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


@pytest.mark.parametrize("how", ["launch", "nested"])
def test_a_launched_process_dies_with_its_starter_even_on_sigkill(tmp_path: Path, how: str) -> None:
    with starter(tmp_path, how) as (proc, pid):
        end = time.monotonic() + 10  # "nested": the shell's child may not have run setsid yet
        while os.getpgid(pid) != pid and time.monotonic() < end:
            time.sleep(0.01)
        assert os.getpgid(pid) == pid  # its own session and group
        assert localproc.parse_mark(psutil.Process(pid).environ()[localproc.OWNER_VAR])[0] == proc.pid  # type: ignore[index]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert wait_gone(pid, timeout=10), "the launched process outlived its SIGKILLed starter"


def test_the_guard_is_no_part_of_the_run_and_leaves_with_its_starter(tmp_path: Path) -> None:
    with starter(tmp_path, "launch") as (proc, _):
        guards = [p for p in psutil.Process(proc.pid).children() if "kaic import guard" in " ".join(p.cmdline())]
        assert len(guards) == 1
        assert not [k for k in guards[0].environ() if k.startswith("KAIC_")]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert wait_gone(guards[0].pid, timeout=10)


def test_a_marked_orphan_is_reaped_by_its_home_only(tmp_path: Path) -> None:
    home, other = tmp_path / "home", tmp_path / "other"
    with starter(home, "bare") as (p1, orphan), starter(other, "bare") as (p2, elsewhere):
        p1.wait()
        p2.wait()  # both starters gone; their children live on, unsignalled and unregistered
        assert alive(orphan)
        assert alive(elsewhere)
        lines = localproc.reap_orphans(home, grace_s=2.0)
        assert lines == [f"sleep (pid {orphan}, its starter pid {p1.pid} is gone)"]
        assert wait_gone(orphan, timeout=5)
        assert alive(elsewhere)  # another home's leftovers are that home's to reap
        assert localproc.reap_orphans(home) == []


def test_a_marked_process_with_a_live_starter_is_left_alone(tmp_path: Path) -> None:
    with starter(tmp_path, "launch") as (_, pid):
        assert localproc.reap_orphans(tmp_path) == []
        assert alive(pid)
