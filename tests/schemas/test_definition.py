"""The definition models: fields, defaults, retry delays, digest and the graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.definition import (
    DEFAULT_RETRY,
    NODE_TYPES,
    PURE_KINDS,
    ApprovalNode,
    HttpNode,
    InputSpec,
    MapNode,
    RetryPolicy,
    SleepNode,
    TransformNode,
    WorkflowDefinition,
    json_type_name,
)
from schemas.exceptions import DefinitionError
from schemas.graph import find_cycles, transitive_deps
from schemas.validation import load_definition_text

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _workflow(nodes: dict[str, Any], **extra: Any) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate({"name": "wf", "nodes": nodes, **extra})


def _t(*deps: str) -> dict[str, Any]:
    return {"kind": "transform", "output": 1, "depends_on": list(deps)}


# --- models -------------------------------------------------------------------------------------------


def test_triage_example_parses_into_every_kind() -> None:
    defn = WorkflowDefinition.model_validate(load_definition_text((EXAMPLES / "triage.yaml").read_text()))
    assert isinstance(defn.nodes["normalize"], TransformNode)
    score = defn.nodes["score"]
    assert isinstance(score, MapNode) and isinstance(score.node, TransformNode)
    notify = defn.nodes["notify"]
    assert isinstance(notify, HttpNode)
    assert notify.method == "POST"
    assert notify.timeout == 5.0
    assert notify.retry == RetryPolicy(max_attempts=4, initial_delay=0.2, max_delay=2.0)
    pause = defn.nodes["pause"]
    assert isinstance(pause, SleepNode) and pause.duration == 1.0
    review = defn.nodes["review"]
    assert isinstance(review, ApprovalNode)
    assert review.timeout == 3600.0 and review.trigger == "all_done"
    assert defn.inputs["threshold"] == InputSpec(type="number", default=0.5)


def test_node_defaults() -> None:
    node = TransformNode(kind="transform", output={"a": 1})
    assert node.depends_on == []
    assert node.when is None and node.retry is None and node.timeout is None
    assert node.trigger == "all_success" and node.on_error == "fail"


def test_models_are_frozen() -> None:
    node = TransformNode(kind="transform")
    with pytest.raises(ValidationError):
        node.output = 2  # type: ignore[misc]


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="dependson"):
        TransformNode.model_validate({"kind": "transform", "dependson": []})


def test_http_method_is_normalized_to_upper_case() -> None:
    node = HttpNode.model_validate({"kind": "http", "url": "http://x", "method": "post"})
    assert node.method == "POST"
    assert HttpNode(kind="http", url="http://x").method == "GET"
    with pytest.raises(ValidationError):
        HttpNode.model_validate({"kind": "http", "url": "http://x", "method": "fetch"})


def test_when_accepts_a_yaml_boolean() -> None:
    assert TransformNode.model_validate({"kind": "transform", "when": False}).when == "false"


def test_kind_tables() -> None:
    assert PURE_KINDS == ("transform", "map")
    assert list(NODE_TYPES) == ["transform", "map", "http", "ai", "wasm", "sleep", "approval"]
    assert [k for k, t in NODE_TYPES.items() if t.supports_retry] == ["http", "ai", "wasm"]
    assert HttpNode.template_fields == ("url", "headers", "body", "query")


@pytest.mark.parametrize("name", ["triage", "a", "my-flow_2.v1", "0abc"])
def test_valid_workflow_names(name: str) -> None:
    assert WorkflowDefinition(name=name, nodes={"a": TransformNode(kind="transform")}).name == name


@pytest.mark.parametrize("name", ["", "Triage", "-a", "a b", "a" * 101, "é"])
def test_invalid_workflow_names(name: str) -> None:
    with pytest.raises(ValidationError):
        WorkflowDefinition(name=name, nodes={"a": TransformNode(kind="transform")})


@pytest.mark.parametrize("node_id", ["bad-id", "1a", "a.b", ""])
def test_node_ids_must_be_identifiers(node_id: str) -> None:
    with pytest.raises(ValidationError):
        _workflow({node_id: _t()})


def test_a_workflow_needs_a_node() -> None:
    with pytest.raises(ValidationError):
        _workflow({})


# --- inputs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "good", "bad"),
    [
        ("string", ["", "x"], [1, None, True]),
        ("number", [1, 1.5, -2], [True, "1", None]),
        ("integer", [1, -3, 3.0], [1.5, True, "1", float("nan")]),
        ("boolean", [True, False], [0, 1, "true"]),
        ("array", [[], [1], (1,)], [{}, "ab"]),
        ("object", [{}, {"a": 1}], [[], "x"]),
        ("any", [None, 1, "x", [], {}], []),
    ],
)
def test_input_type_rules(type_: Any, good: list[Any], bad: list[Any]) -> None:
    spec = InputSpec(type=type_)
    assert all(spec.accepts(v) for v in good)
    assert not any(spec.accepts(v) for v in bad)


def test_integer_valued_float_is_coerced_to_int() -> None:
    value = InputSpec(type="integer").coerce(3.0)
    assert value == 3 and isinstance(value, int)


def test_input_default_must_have_the_declared_type() -> None:
    with pytest.raises(ValidationError, match="default must be of type number, got string"):
        InputSpec(type="number", default="x")


def test_required_input_with_default_is_rejected() -> None:
    with pytest.raises(ValidationError, match="required input cannot have a default"):
        InputSpec(required=True, default=1)


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "null"),
        (True, "boolean"),
        (1, "integer"),
        (1.5, "number"),
        ("", "string"),
        ([], "array"),
        ({}, "object"),
    ],
)
def test_json_type_name(value: Any, name: str) -> None:
    assert json_type_name(value) == name


# --- retry --------------------------------------------------------------------------------------------


def test_retry_defaults() -> None:
    assert RetryPolicy() == DEFAULT_RETRY
    assert (DEFAULT_RETRY.max_attempts, DEFAULT_RETRY.backoff) == (3, "exponential")
    assert (DEFAULT_RETRY.initial_delay, DEFAULT_RETRY.max_delay, DEFAULT_RETRY.multiplier) == (
        1.0,
        30.0,
        2.0,
    )


def test_exponential_delays_are_capped() -> None:
    policy = RetryPolicy(initial_delay=0.2, max_delay=2.0)
    assert [policy.delay(n) for n in range(1, 7)] == pytest.approx([0.2, 0.4, 0.8, 1.6, 2.0, 2.0])
    assert [DEFAULT_RETRY.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_custom_multiplier() -> None:
    assert RetryPolicy(multiplier=3, initial_delay=1, max_delay=100).delay(3) == 9


def test_fixed_delays() -> None:
    policy = RetryPolicy(backoff="fixed", initial_delay="500ms")  # type: ignore[arg-type]
    assert [policy.delay(n) for n in (1, 2, 10)] == [0.5, 0.5, 0.5]


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert DEFAULT_RETRY.delay(100_000) == 30.0


def test_attempts_are_one_based() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        DEFAULT_RETRY.delay(0)


@pytest.mark.parametrize(
    "fields",
    [
        {"max_attempts": 0},
        {"multiplier": 0.5},
        {"initial_delay": "5s", "max_delay": "1s"},
        {"backoff": "linear"},
    ],
)
def test_invalid_retry_policies(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RetryPolicy.model_validate(fields)


# --- digest -------------------------------------------------------------------------------------------


def test_digest_ignores_spelling_and_key_order() -> None:
    a = _workflow({"a": {"kind": "sleep", "duration": "1s"}, "b": {"kind": "sleep", "duration": 2}})
    b = _workflow({"b": {"kind": "sleep", "duration": "2000ms"}, "a": {"kind": "sleep", "duration": 1.0}})
    c = _workflow(
        {
            "a": {"kind": "sleep", "duration": "1s", "trigger": "all_success"},
            "b": {"kind": "sleep", "duration": 2},
        }
    )
    assert a.digest() == b.digest() == c.digest()
    assert len(a.digest()) == 64


def test_digest_changes_with_meaning() -> None:
    a = _workflow({"a": {"kind": "sleep", "duration": "1s"}})
    b = _workflow({"a": {"kind": "sleep", "duration": "2s"}})
    assert a.digest() != b.digest()


# --- graph --------------------------------------------------------------------------------------------


def test_upstream_is_transitive() -> None:
    defn = _workflow({"a": _t(), "b": _t("a"), "c": _t("b"), "d": _t(), "e": _t("c", "d")})
    assert defn.upstream("a") == frozenset()
    assert defn.upstream("c") == {"a", "b"}
    assert defn.upstream("e") == {"a", "b", "c", "d"}
    assert defn.dependants("a") == {"b"}
    assert defn.dependants("e") == frozenset()
    with pytest.raises(KeyError):
        defn.upstream("zz")


def test_topological_order_breaks_ties_by_declaration_order() -> None:
    defn = _workflow({"late": _t("x", "first"), "first": _t(), "x": _t(), "mid": _t("first")})
    assert defn.topological_order() == ["first", "x", "late", "mid"]


def test_topological_order_of_independent_nodes_is_declaration_order() -> None:
    assert _workflow({"c": _t(), "a": _t(), "b": _t()}).topological_order() == ["c", "a", "b"]


def test_topological_order_of_a_cycle_raises() -> None:
    defn = _workflow({"a": _t("b"), "b": _t("a")})
    with pytest.raises(DefinitionError, match="cycle: a -> b -> a"):
        defn.topological_order()


def test_model_copy_recomputes_the_graph() -> None:
    defn = _workflow({"a": _t(), "b": _t("a")})
    assert defn.topological_order() == ["a", "b"]
    changed = defn.model_copy(
        update={"nodes": {"b": TransformNode(kind="transform"), "a": TransformNode(kind="transform")}}
    )
    assert changed.topological_order() == ["b", "a"]
    assert defn == WorkflowDefinition.model_validate(defn.model_dump())


def test_find_cycles() -> None:
    graph = {"a": ["b"], "b": ["a"], "c": ["c"], "d": ["a"], "e": ["f"], "f": ["g"], "g": ["e", "f"]}
    assert find_cycles(graph) == [["a", "b", "a"], ["c", "c"], ["e", "f", "g", "e"]]
    assert find_cycles({"a": [], "b": ["a", "missing"]}) == []


def test_transitive_deps_tolerates_cycles_and_unknown_nodes() -> None:
    assert transitive_deps({"a": ["b", "zz"], "b": ["a"]}) == {"a": {"a", "b"}, "b": {"a", "b"}}


def test_json_schema_is_generated() -> None:
    schema = WorkflowDefinition.model_json_schema()
    assert schema["additionalProperties"] is False
    assert {"name", "nodes"} <= set(schema["required"])
    import jsonschema

    for example in ("triage.yaml", "hello.yaml"):
        jsonschema.validate(load_definition_text((EXAMPLES / example).read_text()), schema)
    lenient = {"name": "x", "nodes": {"a": {"kind": "http", "url": "u", "method": "post", "when": False}}}
    jsonschema.validate(lenient, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "nodes": {"a": {"kind": "sleep", "duration": "1d"}}}, schema)
