"""Cluster teardown: delete every object labelled with the run id, across the kinds kaic creates, and wait
until none is left (with a deadline). A failed deletion or a leftover is a failed check."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kaic.cluster import ClusterClient, ClusterError, Obj, run_selector, split_group_version
from steps.teardown.kinds import CREATED_KINDS


@dataclass
class ClusterSweep:
    kinds: list[tuple[str, str]]  # served kinds looked at
    failures: list[str] = field(default_factory=list)  # deletions the API refused
    deleted: int = 0  # objects found labelled before deletion
    left: list[str] = field(default_factory=list)  # objects still there at the deadline
    elapsed_s: float = 0.0


def served_kinds(
    client: ClusterClient, kinds: Sequence[tuple[str, str]] = CREATED_KINDS
) -> list[tuple[str, str]]:
    served = {(r.group_version, r.plural) for r in client.api_resources()}
    return [k for k in kinds if k in served]


def _name(obj: Obj, plural: str) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{plural}/{ns + '/' if ns else ''}{meta.get('name', '?')}"


def sweep(
    client: ClusterClient,
    run_id: str,
    deadline_s: float,
    poll_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    kinds: Sequence[tuple[str, str]] = CREATED_KINDS,
) -> ClusterSweep:
    """Delete the run's labelled objects kind by kind (in every namespace), then wait for them to be gone."""
    selector = run_selector(run_id)
    started = clock()
    result = ClusterSweep(served_kinds(client, kinds))
    for gv, plural in result.kinds:
        try:
            found = client.list(gv, plural, None, selector)
        except ClusterError as exc:
            result.failures.append(f"list {plural}: {exc}")
            continue
        result.deleted += len(found)
        for ns in sorted({(o.get("metadata") or {}).get("namespace") or "" for o in found}):
            try:
                client.delete_collection(gv, plural, ns or None, selector)
            except ClusterError as exc:  # fall back to one by one, so one refusal names its object
                result.failures.append(f"deletecollection {plural} in {ns or '(cluster)'}: {exc}")
                for o in found:
                    if ((o.get("metadata") or {}).get("namespace") or "") != ns:
                        continue
                    try:
                        client.delete(gv, plural, o["metadata"]["name"], ns or None)
                    except ClusterError as exc2:
                        result.failures.append(f"delete {_name(o, plural)}: {exc2}")
    end = started + deadline_s
    while True:
        result.left = leftovers(client, run_id, result.kinds)
        if not result.left or clock() >= end:
            break
        sleep(min(poll_s, max(0.0, end - clock())))
    result.elapsed_s = clock() - started
    return result


def leftovers(client: ClusterClient, run_id: str, kinds: Sequence[tuple[str, str]]) -> list[str]:
    selector = run_selector(run_id)
    left: list[str] = []
    for gv, plural in kinds:
        try:
            left += [_name(o, plural) for o in client.list(gv, plural, None, selector)]
        except ClusterError as exc:
            group, _ = split_group_version(gv)
            left.append(f"{plural}.{group or 'core'}: cannot list ({exc})")
    return left
