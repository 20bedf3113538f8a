"""Run Argo's e2e corpus (../shared/fixtures/argo-e2e) through the local executor and print the
outcome table: match, message differs, wrong phase or outputs, refused (cluster / no cluster
needed), crashed. The oracle and the per-case checks are those of
tests/integration/test_executor_argo_e2e.py.

    PYTHONPATH=. python scripts/argo_e2e_table.py [-v] [NAME ...]
"""

from __future__ import annotations

import sys
import tempfile
import traceback
from collections import Counter
from pathlib import Path

from kaic.errors import ConfigError
from kaic.executor import ExecutorOptions, run_workflow
from tests.integration.test_executor_argo_e2e import (
    CASES,
    CLUSTER_ONLY,
    Case,
    expected_phase,
    load,
    oracle,
    refusal_allowed,
)

MESSAGE_WORDS = ("message", "msg")


def judge(name: str, home: Path) -> tuple[str, str]:
    expected = oracle()[name]
    case = CASES.get(name, Case())
    try:
        result = run_workflow(load(name, case), {}, ExecutorOptions(kaic_home=home, handle_signals=False))
    except ConfigError as exc:
        text = str(exc)
        cluster = refusal_allowed(expected) and CLUSTER_ONLY.search(text) is not None
        return ("refused (needs a cluster)" if cluster else "refused (no cluster needed)"), text
    except Exception:  # the table reports crashes instead of stopping at the first
        return "crashed", traceback.format_exc(limit=3).strip().splitlines()[-1]
    want = case.phase or expected_phase(expected)
    if result.phase != want:
        return "wrong phase or outputs", f"{result.phase} ({result.message}); Argo: {expected}"
    if case.check is not None:
        try:
            case.check(result)
        except AssertionError as exc:
            about_message = any(w in str(exc).lower() for w in MESSAGE_WORDS)
            return ("phases right, message differs" if about_message else "wrong phase or outputs"), str(exc)
    return "match", result.phase


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    names = [a for a in argv if not a.startswith("-")] or sorted(oracle())
    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            outcome, detail = judge(name, Path(tmp) / name)
            counts[outcome] += 1
            if verbose or outcome != "match":
                print(f"{name:45} {outcome:30} {detail[:150]}")
    print("\n| outcome | count |\n|---|---|")
    order = [
        "match",
        "phases right, message differs",
        "wrong phase or outputs",
        "refused (needs a cluster)",
        "refused (no cluster needed)",
        "crashed",
    ]
    for outcome in order:
        print(f"| {outcome} | {counts.get(outcome, 0)} |")
    print(f"| total | {sum(counts.values())} |")
    bad = sum(counts.get(k, 0) for k in order[1:3]) + counts.get(order[4], 0) + counts.get(order[5], 0)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
