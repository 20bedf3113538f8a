"""``memoize``: a template's outputs cached under its ``key`` in ``$KAIC_HOME/memo/<cache name>/``
(the ConfigMap Argo would use), reused while younger than ``maxAge``."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaic.executor.loops import parse_duration
from kaic.executor.status import NodeStatus


@dataclass(frozen=True)
class Memo:
    key: str
    cache: str
    max_age_s: float | None

    @classmethod
    def of(cls, spec: Mapping[str, Any], key: str) -> Memo:
        cache = str(((spec.get("cache") or {}).get("configMap") or {}).get("name") or "default")
        age = spec.get("maxAge")
        return cls(key, cache, parse_duration(age) if age not in (None, "") else None)

    def status(self, hit: bool) -> dict[str, Any]:
        return {"hit": hit, "key": self.key, "cacheName": self.cache}


class MemoCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, memo: Memo) -> Path:
        digest = hashlib.sha256(memo.key.encode("utf-8")).hexdigest()[:32]
        return self.root / memo.cache.replace("/", "_") / f"{digest}.json"

    def load(self, memo: Memo, now: float | None = None) -> dict[str, Any] | None:
        """The cached outputs of ``memo.key``, or None when absent or older than ``maxAge``."""
        try:
            entry = json.loads(self._path(memo).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if entry.get("key") != memo.key:
            return None
        age = (time.time() if now is None else now) - float(entry.get("created", 0))
        if memo.max_age_s is not None and age > memo.max_age_s:
            return None
        outputs: dict[str, Any] = entry.get("outputs") or {}
        return outputs

    def save(self, memo: Memo, node: NodeStatus) -> None:
        outputs = {
            "parameters": node.parameters,
            "artifacts": node.artifacts,
            "result": node.result,
            "exitCode": node.exit_code,
        }
        path = self._path(memo)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": memo.key, "created": time.time(), "outputs": outputs}), encoding="utf-8")
        tmp.replace(path)


def apply_outputs(node: NodeStatus, outputs: Mapping[str, Any]) -> None:
    node.parameters = list(outputs.get("parameters") or [])
    node.artifacts = list(outputs.get("artifacts") or [])
    node.result = outputs.get("result")
    node.exit_code = outputs.get("exitCode")
