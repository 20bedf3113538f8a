"""Fan-out: the one primitive that runs a step group's steps, a DAG's ready tasks and the items of a
``withItems``/``withParam``/``withSequence`` loop, each on its own thread, at most ``parallelism`` at
once (the template's; the workflow's bounds pods in :mod:`pods`), reporting them in completion
order. Also the loop expansion of a step or task into :class:`Call` records.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

from kaic.executor.expressions import to_text
from kaic.executor.invocation import Call
from kaic.executor.loops import expand_sequence, item_label, parse_param_items
from kaic.executor.process import CancelScope, Slots
from kaic.executor.templating import substitute, substitute_any

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")

FAIL_FAST_MESSAGE = "template has failed or errored children and failFast enabled"
EMPTY_LOOP_MESSAGE = "Skipped, empty params"


class Launcher(Generic[K, R]):
    """Starts units of work on threads, bounded by ``limit`` (None: unbounded); ``next_done``
    hands them back as they finish."""

    def __init__(self, limit: int | None, scope: CancelScope) -> None:
        self.scope = scope
        self.slots = Slots(limit) if limit is not None else None
        if self.slots is not None:
            scope.watch(self.slots)
        self.running = 0
        self._done: queue.SimpleQueue[tuple[K, R | None, BaseException | None]] = queue.SimpleQueue()

    def start(self, key: K, work: Callable[[], R], wait: bool = True) -> bool:
        """Start ``work`` once a slot is free (``wait``) or only if one is free now; False when it
        was not started (no free slot, or the scope was cancelled while waiting)."""
        if self.slots is not None:
            ok = self.slots.acquire(self.scope) if wait else self.slots.try_acquire()
            if not ok:
                return False
        self.running += 1

        def run() -> None:
            try:
                result = work()
            except BaseException as exc:  # handed to the walk's thread, which re-raises it
                self._release()
                self._done.put((key, None, exc))
                return
            self._release()
            self._done.put((key, result, None))

        threading.Thread(target=run, daemon=True).start()
        return True

    def _release(self) -> None:
        if self.slots is not None:
            self.slots.release()

    def next_done(self) -> tuple[K, R]:
        key, result, error = self._done.get()
        self.running -= 1
        if error is not None:
            raise error
        assert result is not None
        return key, result

    def drain(self) -> list[tuple[K, R]]:
        out = []
        while self.running:
            out.append(self.next_done())
        return out


def template_limit(spec: Mapping[str, Any], local: Mapping[str, str]) -> int | None:
    value = spec.get("parallelism")
    return int(substitute(to_text(value), local)) if value is not None else None


def is_loop(spec: Mapping[str, Any]) -> bool:
    return any(spec.get(k) is not None for k in ("withItems", "withParam", "withSequence"))


def expand(spec: Mapping[str, Any], local: Mapping[str, str]) -> list[Any] | None:
    """The loop items of a step or task, or None when it has no loop."""
    if spec.get("withItems") is not None:
        return [substitute_any(i, local) for i in spec["withItems"]]
    if spec.get("withParam") is not None:
        return parse_param_items(substitute(to_text(spec["withParam"]), local))
    seq = spec.get("withSequence")
    if seq is not None:
        sub = {k: substitute(to_text(v), local) for k, v in seq.items()}
        return expand_sequence(sub.get("count"), sub.get("start"), sub.get("end"), sub.get("format"))
    return None


def calls_for(
    spec: Mapping[str, Any], base: str, display: str, local: Mapping[str, str], keep_hooks: bool = False
) -> list[Call]:
    """The calls a step or task expands to: itself, or one per loop item. Steps keep their hooks on
    every item (Argo expands them into steps); a DAG task's hooks belong to its TaskGroup."""
    items = expand(spec, local)
    if items is None:
        return [Call(spec, base, display)]
    child_spec = dict(spec) if keep_hooks else {k: v for k, v in spec.items() if k not in ("hooks", "onExit")}
    return [
        Call(child_spec, f"{base}({i}:{item_label(item)})", f"{display}({i}:{item_label(item)})", item)
        for i, item in enumerate(items)
    ]
