"""The fan-out primitive's bound, the memoize cache and the lock specs, without processes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from kaic.executor.fanout import Launcher, calls_for
from kaic.executor.locks import LockError, LockSpec, LockTable, lock_specs
from kaic.executor.memo import Memo, MemoCache
from kaic.executor.process import CancelScope
from kaic.executor.status import NodeStatus

pytestmark = pytest.mark.unit


def test_launcher_never_starts_more_than_its_limit() -> None:
    gate = threading.Event()
    launcher: Launcher[int, int] = Launcher(2, CancelScope())

    def work(i: int) -> int:
        gate.wait()
        return i

    started = [i for i in range(5) if launcher.start(i, lambda i=i: work(i), wait=False)]
    assert started == [0, 1]
    assert launcher.running == 2
    gate.set()
    done = sorted(launcher.next_done()[0] for _ in started)
    assert done == [0, 1]
    assert launcher.start(2, lambda: work(2), wait=False)
    assert launcher.drain() == [(2, 2)]


def test_launcher_hands_a_units_exception_to_the_walk() -> None:
    launcher: Launcher[str, int] = Launcher(None, CancelScope())

    def boom() -> int:
        raise RuntimeError("bug")

    launcher.start("x", boom)
    with pytest.raises(RuntimeError, match="bug"):
        launcher.next_done()


def test_loop_calls_keep_hooks_only_for_steps() -> None:
    spec = {"name": "s", "template": "t", "withItems": ["a", {"k": 1}], "hooks": {"exit": {"template": "h"}}}
    steps = calls_for(spec, "wf[0].s", "s", {}, keep_hooks=True)
    tasks = calls_for(spec, "wf.s", "s", {})
    assert [c.name for c in steps] == ["wf[0].s(0:a)", "wf[0].s(1:k:1)"]
    assert all("hooks" in c.spec for c in steps)
    assert not any("hooks" in c.spec for c in tasks)
    assert calls_for({"name": "s", "template": "t", "withParam": "[]"}, "b", "s", {}) == []


def test_memo_cache_honours_key_and_max_age(tmp_path: Path) -> None:
    cache = MemoCache(tmp_path)
    memo = Memo.of({"key": "ignored", "maxAge": "10s", "cache": {"configMap": {"name": "cm"}}}, "k1")
    assert (memo.cache, memo.max_age_s) == ("cm", 10.0)
    assert cache.load(memo) is None
    node = NodeStatus(id="n", name="n", display_name="n", type="Pod", template_name="t", result="r")
    node.parameters = [{"name": "p", "value": "v"}]
    cache.save(memo, node)
    hit = cache.load(memo)
    assert hit is not None
    assert (hit["result"], hit["parameters"]) == ("r", [{"name": "p", "value": "v"}])
    assert cache.load(Memo("k2", "cm", None)) is None
    assert cache.load(memo, now=time.time() + 11) is None  # older than maxAge
    assert cache.load(Memo("k1", "cm", None), now=time.time() + 1e6) is not None  # no maxAge


def test_lock_specs(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("kind: ConfigMap\ndata:\n  n: '3'\n", encoding="utf-8")
    specs = lock_specs(
        {
            "mutexes": [{"name": "b"}],
            "mutex": {"name": "a"},
            "semaphore": {"configMapKeyRef": {"name": "cm", "key": "n"}},
        },
        tmp_path,
    )
    assert specs == [LockSpec("mutex/a", 1), LockSpec("mutex/b", 1), LockSpec("semaphore/cm/n", 3)]
    with pytest.raises(LockError, match="semaphore cm/missing"):
        lock_specs({"semaphore": {"configMapKeyRef": {"name": "cm", "key": "missing"}}}, tmp_path)


def test_lock_table_gives_up_when_cancelled() -> None:
    table = LockTable()
    spec = [LockSpec("mutex/x", 1)]
    scope = CancelScope()
    assert table.acquire(spec, scope)
    waiter = CancelScope()
    waiter.cancel("stop")
    assert not table.acquire(spec, waiter)
    table.release(spec)
    assert table.acquire(spec, scope)
