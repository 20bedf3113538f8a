"""`{{...}}` substitution, loops, durations, /tmp path mapping and aggregated outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kaic.executor.loops import (
    LoopError,
    expand_sequence,
    item_label,
    item_scope,
    parse_duration,
    parse_param_items,
)
from kaic.executor.process import PathMap
from kaic.executor.status import NodeStatus
from kaic.executor.templating import UnresolvedError, nested, substitute, substitute_any
from kaic.executor.varscope import node_vars

pytestmark = pytest.mark.unit


def test_substitute_names_and_spaces() -> None:
    scope = {"inputs.parameters.message": "hi", "steps.flip-coin.outputs.result": "heads"}
    assert substitute("say {{inputs.parameters.message}} / {{ steps.flip-coin.outputs.result }}", scope) == (
        "say hi / heads"
    )
    assert substitute_any({"a": ["{{inputs.parameters.message}}", 3]}, scope) == {"a": ["hi", 3]}


def test_substitute_refuses_unknown_names() -> None:
    with pytest.raises(UnresolvedError, match=r"unable to resolve \{\{inputs.parameters.nope\}\}"):
        substitute("{{inputs.parameters.nope}}", {})


def test_substitute_expression_tags() -> None:
    scope = {"workflow.parameters.config": '{"a": "1"}', "steps.a-b.outputs.result": "7"}
    assert substitute("{{=jsonpath(workflow.parameters.config, '$.a')}}", scope) == "1"
    assert substitute("{{= asInt(steps['a-b'].outputs.result) * 2 }}", scope) == "14"
    with pytest.raises(UnresolvedError):
        substitute("{{= nope.x }}", scope)


def test_nested_prefers_maps_over_aggregated_strings() -> None:
    tree = nested({"tasks.a.outputs.parameters": "[]", "tasks.a.outputs.parameters.p": '["1"]'})
    assert tree == {"tasks": {"a": {"outputs": {"parameters": {"p": '["1"]'}}}}}


@pytest.mark.parametrize(
    ("count", "start", "end", "fmt", "expected"),
    [
        ("5", None, None, None, ["0", "1", "2", "3", "4"]),
        (None, "100", "105", None, ["100", "101", "102", "103", "104", "105"]),
        ("3", "200", None, None, ["200", "201", "202"]),
        (None, "5", "0", None, ["5", "4", "3", "2", "1", "0"]),
        (None, "1", "0", None, ["1", "0"]),
        ("5", None, None, "testuser%02X", [f"testuser{i:02X}" for i in range(5)]),
        ("0", None, None, None, []),
    ],
)
def test_expand_sequence(
    count: str | None, start: str | None, end: str | None, fmt: str | None, expected: list[str]
) -> None:
    assert expand_sequence(count, start, end, fmt) == expected


def test_expand_sequence_errors() -> None:
    with pytest.raises(LoopError, match="only one of count or end"):
        expand_sequence("1", None, "2", None)
    with pytest.raises(LoopError, match="not an integer"):
        expand_sequence("x", None, None, None)


def test_param_items_and_item_scope() -> None:
    items = parse_param_items('[{"num": "1", "evenness": "odd"}, 2]')
    assert item_scope(items[0]) == {
        "item": '{"num":"1","evenness":"odd"}',
        "item.num": "1",
        "item.evenness": "odd",
    }
    assert item_label(items[0]) == "evenness:odd,num:1"
    assert item_scope(items[1]) == {"item": "2"}
    with pytest.raises(LoopError, match="not a JSON list"):
        parse_param_items('{"a": 1}')


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30), ("10s", 10), ("2m", 120), ("1h30m", 5400), ("500ms", 0.5), ("1d", 86400), (5, 5)],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_garbage() -> None:
    with pytest.raises(LoopError):
        parse_duration("soon")


def test_path_map_rewrites_tmp_and_declared_paths_once(tmp_path: Path) -> None:
    node = tmp_path / "nodes" / "n1"  # itself under the host's /tmp: must not be rewritten twice
    pm = PathMap(node, ("/tmp/num", "/output/x.txt"))
    text = "echo 1 > /tmp/num; cat /tmpx /var/tmp/a; echo > /output/x.txt; ls /tmp"
    assert pm.rewrite(text) == (
        f"echo 1 > {node}/tmp/num; cat /tmpx /var/tmp/a; echo > {node}/root/output/x.txt; ls {node}/tmp"
    )
    assert pm.local("/tmp/num") == node / "tmp" / "num"
    assert pm.local("rel/file") == node / "rel" / "file"


def test_aggregated_outputs_of_a_fan_out() -> None:
    def pod(i: int, phase: str, result: str, params: dict[str, str]) -> NodeStatus:
        n = NodeStatus(
            id=f"n{i}", name=f"x({i})", display_name="x", type="Pod", template_name="t", phase=phase
        )
        n.result = result
        n.parameters = [{"name": k, "value": v} for k, v in params.items()]
        return n

    kids = [
        pod(0, "Succeeded", "1", {"num": "1"}),
        pod(1, "Failed", "x", {"num": "2"}),
        pod(2, "Succeeded", "hello", {"num": "3"}),
    ]
    group = NodeStatus(
        id="g", name="x", display_name="x", type="TaskGroup", template_name="t", phase="Failed"
    )
    out = node_vars("tasks.x", group, kids)
    assert json.loads(out["tasks.x.outputs.result"]) == [1, "hello"]  # only Succeeded children
    assert out["tasks.x.outputs.parameters.num"] == '["1","3"]'
    assert json.loads(out["tasks.x.outputs.parameters"]) == [{"num": "1"}, {"num": "3"}]
