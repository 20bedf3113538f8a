"""How many executor nodes ran at once, from their recorded start and end times (monotonic clock)."""

from __future__ import annotations

import itertools

from kaic.executor.status import NodeStatus


def max_overlap(nodes: list[NodeStatus]) -> int:
    events = sorted(
        itertools.chain.from_iterable(((n.started_mono, 1), (n.finished_mono, -1)) for n in nodes),
        key=lambda e: (e[0], e[1]),
    )
    running = best = 0
    for _, delta in events:
        running += delta
        best = max(best, running)
    return best
