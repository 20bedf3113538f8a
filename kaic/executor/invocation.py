"""The typed records the walks pass around instead of positional argument chains."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kaic.executor.manifest import Template
from kaic.executor.process import CancelScope
from kaic.executor.status import NodeStatus

NO_ITEM: Any = object()


@dataclass(frozen=True)
class Call:
    """One expanded step or task: its spec, and the node name it runs under (with its loop item)."""

    spec: Mapping[str, Any]
    name: str
    display: str
    item: Any = NO_ITEM

    @property
    def template_name(self) -> str:
        return str(self.spec.get("template") or "")


@dataclass(frozen=True)
class Invocation:
    """One template to run under one node: ``args`` are the argument parameters (an absent
    optional's argument is left out), ``artifacts`` the argument artifacts, ``cancel`` the scope
    that stops it, ``attempt`` the retry attempt (``{{retries}}``)."""

    template: Template
    name: str
    display: str
    parent: NodeStatus | None
    cancel: CancelScope
    args: Mapping[str, str] = field(default_factory=dict)
    artifacts: tuple[Mapping[str, Any], ...] = ()
    dropped: frozenset[str] = frozenset()  # argument names that referenced an absent optional
    attempt: int | None = None
    on_running: Callable[[NodeStatus], None] | None = None  # called with the invocation's own node
