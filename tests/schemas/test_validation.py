"""Validation: every problem kind reported with its path, all at once; text loading; run inputs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from schemas.definition import WorkflowDefinition
from schemas.exceptions import DefinitionError, InputError, Problem
from schemas.templates import render
from schemas.validation import load_definition, load_definition_text, validate_definition, validate_inputs

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _valid() -> dict[str, Any]:
    return {
        "name": "wf",
        "inputs": {"who": {"type": "string", "required": True}},
        "nodes": {
            "a": {"kind": "transform", "output": "{{ inputs.who }}"},
            "b": {"kind": "transform", "output": "{{ nodes.a.output }}", "depends_on": ["a"]},
        },
        "outputs": {"b": "{{ nodes.b.output }}"},
    }


def _problems(raw: Any) -> list[Problem]:
    with pytest.raises(DefinitionError) as caught:
        validate_definition(raw)
    return caught.value.problems


def _only(raw: Any) -> Problem:
    problems = _problems(raw)
    assert len(problems) == 1, problems
    return problems[0]


def _with_node(node_id: str, node: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    raw = copy.deepcopy(base or _valid())
    raw["nodes"][node_id] = node
    return raw


# --- the examples -------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", ["triage.yaml", "hello.yaml"])
def test_examples_validate(example: str) -> None:
    defn = load_definition((EXAMPLES / example).read_text())
    assert isinstance(defn, WorkflowDefinition)


def test_triage_example_graph_and_inputs() -> None:
    defn = load_definition((EXAMPLES / "triage.yaml").read_text())
    assert defn.topological_order() == ["normalize", "score", "notify", "redact", "summary", "pause", "review"]
    assert defn.upstream("review") == {"normalize", "score", "notify", "redact", "summary", "pause"}
    inputs = validate_inputs(defn, {"tickets": ["A"], "webhook": "http://x"})
    assert inputs == {
        "tickets": ["A"],
        "webhook": "http://x",
        "threshold": 0.5,
        "ai_provider": "echo",
        "ai_model": "echo-1",
    }


def test_triage_example_templates_evaluate_as_the_orchestrator_would() -> None:
    defn = load_definition((EXAMPLES / "triage.yaml").read_text())
    ctx: dict[str, Any] = {
        "inputs": {"tickets": ["Server DOWN urgent", "Typo"], "webhook": "http://h"},
        "nodes": {},
    }
    normalize = defn.nodes["normalize"]
    ctx["nodes"]["normalize"] = {
        "output": render(normalize.model_dump()["output"], ctx),
        "status": "succeeded",
    }
    score = defn.nodes["score"]
    assert score.kind == "map"
    items = render(score.over, ctx)
    assert items == ["server down urgent", "typo"]
    outputs = [render(score.node.output, {**ctx, "item": it, "index": i}) for i, it in enumerate(items)]
    ctx["nodes"]["score"] = {"output": outputs, "status": "succeeded"}
    notify = defn.nodes["notify"]
    assert notify.kind == "http" and notify.when is not None
    from schemas.templates import evaluate_condition

    assert evaluate_condition(notify.when, ctx) is True
    assert render(notify.body, ctx) == {"urgent": [{"text": "server down urgent", "urgent": True}]}
    redact = defn.nodes["redact"]
    assert redact.kind == "wasm" and render(redact.input, ctx) == ["server down urgent", "typo"]
    ctx["nodes"]["redact"] = {"output": {"value": ["server down urgent", "typo"], "redacted": 0}, "status": "succeeded"}
    ctx["nodes"]["summary"] = {"output": {"text": "one urgent ticket"}, "status": "succeeded"}
    assert render(defn.outputs, ctx) == {"urgent": 1, "summary": "one urgent ticket", "redacted": 0}


def test_valid_definition_returns_the_model() -> None:
    defn = validate_definition(_valid())
    assert list(defn.nodes) == ["a", "b"]


# --- loading text -------------------------------------------------------------------------------------


def test_json_text_loads() -> None:
    assert load_definition_text('{"name": "x", "nodes": {}}') == {"name": "x", "nodes": {}}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: x\nnodes: [1\n", "line 3, column 1"),
        ("name: x\n  bad: indent\n", "line 2, column 6"),
        ("name: a\nname: b\n", "duplicate key 'name' (first defined on line 1)"),
        ("nodes:\n  a: {kind: sleep}\n  a: {kind: sleep}\n", "line 3, column 3: duplicate key 'a'"),
        ("- a\n- b\n", "got an array"),
        ("just text", "got a string"),
        ("", "got an empty document"),
    ],
)
def test_unloadable_text_reports_where(text: str, fragment: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition_text(text)
    (problem,) = caught.value.problems
    assert problem.path == ""
    assert fragment in problem.message


def test_yaml_merge_keys_may_override() -> None:
    text = "base: &b {kind: sleep, duration: 1s}\nnodes:\n  a:\n    <<: *b\n    duration: 2s\n"
    assert load_definition_text(text)["nodes"]["a"] == {"kind": "sleep", "duration": "2s"}


# --- field problems -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        ({"name": "Bad Name"}, "name", "lower-case letters"),
        ({"colour": "red"}, "colour", "unknown field 'colour' for a workflow"),
        ({"nodes": {}}, "nodes", "at least one node"),
        ({"outputs": [1]}, "outputs", "must be a mapping, got array"),
        ({"inputs": {"who": {"type": "text"}}}, "inputs.who.type", "must be one of 'string'"),
        ({"inputs": {"bad-name": {}}}, "inputs['bad-name']", "an input name must start with a letter"),
        (
            {"inputs": {"who": {"type": "number", "default": "x"}}},
            "inputs.who",
            "default must be of type number",
        ),
    ],
)
def test_top_level_field_problems(change: dict[str, Any], path: str, fragment: str) -> None:
    raw = {**_valid(), **change}
    problems = _problems(raw)
    assert any(p.path == path and fragment in p.message for p in problems), problems


@pytest.mark.parametrize(
    ("node", "path", "fragment"),
    [
        (
            {"kind": "fetch"},
            "nodes.n.kind",
            "unknown kind 'fetch'; known kinds: transform, map, http, ai, wasm, sleep, approval",
        ),
        ({"output": 1}, "nodes.n.kind", "missing kind; known kinds: transform"),
        ({"kind": "sleep"}, "nodes.n.duration", "missing required field"),
        ({"kind": "sleep", "duration": "1d"}, "nodes.n.duration", "ms, s, m or h"),
        (
            {"kind": "http", "url": "u", "retry": {"initial_delay": "soon"}},
            "nodes.n.retry.initial_delay",
            "ms, s, m or h",
        ),
        (
            {"kind": "http", "url": "u", "retry": {"max_atempts": 2}},
            "nodes.n.retry.max_atempts",
            "did you mean 'max_attempts'?",
        ),
        (
            {"kind": "http", "url": "u", "retry": {"max_attempts": 0}},
            "nodes.n.retry.max_attempts",
            "must be at least 1",
        ),
        (
            {"kind": "http", "url": "u", "retry": {"initial_delay": 9, "max_delay": 1}},
            "nodes.n.retry",
            "max_delay",
        ),
        ({"kind": "http", "url": "u", "method": "FETCH"}, "nodes.n.method", "must be one of 'GET'"),
        ({"kind": "http", "url": 3}, "nodes.n.url", "must be a string, got integer"),
        ({"kind": "http", "url": "u", "dependson": []}, "nodes.n.dependson", "did you mean 'depends_on'?"),
        (
            {"kind": "transform", "url": "u"},
            "nodes.n.url",
            "unknown field 'url' for a transform node (it belongs to http",
        ),
        (
            {"kind": "transform", "trigger": "any"},
            "nodes.n.trigger",
            "must be one of 'all_success' or 'all_done'",
        ),
        ({"kind": "transform", "on_error": "ignore"}, "nodes.n.on_error", "'fail' or 'continue'"),
        ({"kind": "transform", "depends_on": "a"}, "nodes.n.depends_on", "must be a list, got string"),
        ({"kind": "map", "over": "{{ [] }}"}, "nodes.n.node", "missing required field"),
        (
            {"kind": "map", "over": "x", "node": {"kind": "http", "url": "u"}},
            "nodes.n.node.kind",
            "'transform'",
        ),
        ("transform", "nodes.n", "a node must be a mapping with a kind, got string"),
    ],
)
def test_node_field_problems(node: Any, path: str, fragment: str) -> None:
    problems = _problems(_with_node("n", node))
    assert any(p.path == path and fragment in p.message for p in problems), problems


def test_bad_node_id() -> None:
    problem = _only(_with_node("bad-id", {"kind": "transform"}))
    assert problem.path == "nodes['bad-id']"
    assert "nodes.<name>" in problem.message


def test_not_a_mapping() -> None:
    assert _only(["a"]).path == ""


# --- kind rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "path", "fragment"),
    [
        ({"kind": "transform", "retry": {}}, "nodes.n.retry", "a transform node is never retried"),
        ({"kind": "sleep", "duration": 1, "retry": {}}, "nodes.n.retry", "never retried"),
        (
            {"kind": "approval", "retry": {"max_attempts": 2}},
            "nodes.n.retry",
            "an approval node is never retried",
        ),
        (
            {"kind": "transform", "timeout": "1s"},
            "nodes.n.timeout",
            "timeout has no effect on a transform node",
        ),
        ({"kind": "sleep", "duration": 1, "timeout": "1s"}, "nodes.n.timeout", "no effect on a sleep node"),
    ],
)
def test_fields_a_kind_would_ignore_are_reported(node: dict[str, Any], path: str, fragment: str) -> None:
    problem = _only(_with_node("n", node))
    assert (problem.path, fragment in problem.message) == (path, True), problem


def test_http_and_approval_accept_timeout() -> None:
    raw = _with_node("h", {"kind": "http", "url": "u", "timeout": "5s", "retry": {}})
    raw["nodes"]["p"] = {"kind": "approval", "timeout": "1h"}
    validate_definition(raw)


@pytest.mark.parametrize("field", ["depends_on", "when", "retry", "timeout", "trigger", "on_error"])
def test_the_inner_node_of_a_map_takes_no_scheduling_fields(field: str) -> None:
    value = {"depends_on": ["a"], "when": "true", "retry": {}, "timeout": "1s", "trigger": "all_done"}.get(
        field, "continue"
    )
    node = {
        "kind": "map",
        "over": "{{ [1] }}",
        "node": {"kind": "transform", "output": "{{ item }}", field: value},
    }
    problem = _only(_with_node("m", node))
    assert problem.path == f"nodes.m.node.{field}"
    assert "inner node of a map" in problem.message


# --- graph problems -----------------------------------------------------------------------------------


def test_unknown_dependency() -> None:
    problem = _only(_with_node("c", {"kind": "transform", "depends_on": ["a", "bb"]}))
    assert problem.path == "nodes.c.depends_on[1]"
    assert problem.message == "unknown node 'bb'; did you mean 'b'?"


def test_dependency_listed_twice() -> None:
    problem = _only(_with_node("c", {"kind": "transform", "depends_on": ["a", "a"]}))
    assert (problem.path, problem.message) == ("nodes.c.depends_on[1]", "'a' is listed more than once")


def test_cycle_names_its_nodes_in_order() -> None:
    raw = _valid()
    raw["nodes"]["a"]["depends_on"] = ["c"]
    raw["nodes"]["c"] = {"kind": "transform", "depends_on": ["b"]}
    problem = _only(raw)
    assert problem.path == "nodes.a.depends_on"
    assert "cycle: a -> c -> b -> a" in problem.message


def test_self_dependency_is_a_cycle() -> None:
    problem = _only(_with_node("c", {"kind": "transform", "depends_on": ["c"]}))
    assert "cycle: c -> c" in problem.message


def test_two_cycles_are_two_problems() -> None:
    raw = _with_node("c", {"kind": "transform", "depends_on": ["d"]})
    raw["nodes"]["d"] = {"kind": "transform", "depends_on": ["c"]}
    raw["nodes"]["e"] = {"kind": "transform", "depends_on": ["e"]}
    assert [p.message.split(" (")[0] for p in _problems(raw)] == ["cycle: c -> d -> c", "cycle: e -> e"]


def test_graph_checks_run_when_a_node_has_field_errors() -> None:
    raw = _with_node("c", {"kind": "sleep", "duration": "forever", "depends_on": ["zz"]})
    paths = {p.path for p in _problems(raw)}
    assert paths == {"nodes.c.duration", "nodes.c.depends_on[0]"}


def test_graph_checks_run_when_a_kind_is_unknown() -> None:
    raw = _with_node("c", {"kind": "teleport", "depends_on": ["zz"], "when": "{{ nodes.a.output }}"})
    assert {(p.path, p.message.split(";")[0]) for p in _problems(raw)} == {
        ("nodes.c.kind", "unknown kind 'teleport'"),
        ("nodes.c.depends_on[0]", "unknown node 'zz'"),
        ("nodes.c.when", "reads nodes.a but does not depend on it"),
    }


# --- template problems --------------------------------------------------------------------------------


def test_template_syntax_error_points_at_the_string() -> None:
    raw = _with_node("h", {"kind": "http", "url": "u", "body": {"list": ["ok", "{{ inputs.who"]}})
    problem = _only(raw)
    assert problem.path == "nodes.h.body.list[1]"
    assert problem.message.startswith("template syntax error")


def test_template_reading_an_unknown_node() -> None:
    problem = _only(_with_node("c", {"kind": "transform", "output": "{{ nodes.nobody.output }}"}))
    assert (problem.path, problem.message) == ("nodes.c.output", "unknown node 'nobody'")


def test_template_reading_a_node_it_does_not_depend_on() -> None:
    problem = _only(_with_node("c", {"kind": "transform", "output": {"x": "{{ nodes['b'].output }}"}}))
    assert problem.path == "nodes.c.output.x"
    assert problem.message == "reads nodes.b but does not depend on it; add it to depends_on"


def test_transitive_dependencies_may_be_read() -> None:
    validate_definition(_with_node("c", {"kind": "transform", "output": "{{ nodes.a.output }}", "depends_on": ["b"]}))


def test_a_node_cannot_read_itself() -> None:
    problem = _only(_with_node("c", {"kind": "transform", "output": "{{ nodes.c.output }}"}))
    assert "its own output" in problem.message


def test_outputs_may_read_any_node_but_not_unknown_ones() -> None:
    raw = _valid()
    raw["outputs"] = {"a": "{{ nodes.a.output }}", "z": "{{ nodes.zzz.output }}"}
    assert _only(raw) == Problem(path="outputs.z", message="unknown node 'zzz'")


def test_when_is_checked_like_a_template() -> None:
    raw = _with_node("c", {"kind": "transform", "when": "nodes.b.output == 1", "depends_on": ["a"]})
    problem = _only(raw)
    assert problem.path == "nodes.c.when"
    assert "reads nodes.b but does not depend on it" in problem.message


def test_when_must_be_a_single_expression() -> None:
    problem = _only(_with_node("c", {"kind": "transform", "when": "{{ true }} and {{ false }}"}))
    assert "single expression" in problem.message


def test_when_syntax_error() -> None:
    assert _only(_with_node("c", {"kind": "transform", "when": "1 +"})).path == "nodes.c.when"


def test_unknown_variables_and_inputs() -> None:
    raw = _with_node("c", {"kind": "transform", "output": ["{{ input.who }}", "{{ inputs.whom }}", "{{ item }}"]})
    assert [(p.path, p.message) for p in _problems(raw)] == [
        (
            "nodes.c.output[0]",
            "unknown variable 'input'; templates can read inputs, nodes, run; did you mean 'inputs'?",
        ),
        ("nodes.c.output[1]", "unknown input 'whom'; did you mean 'who'?"),
        ("nodes.c.output[2]", "'item' is only defined inside the inner node of a map"),
    ]


def test_map_inner_templates_see_item_and_the_map_dependencies() -> None:
    node = {
        "kind": "map",
        "over": "{{ nodes.a.output }}",
        "node": {"kind": "transform", "output": "{{ item ~ index ~ nodes.a.output ~ nodes.b.output }}"},
        "depends_on": ["a"],
    }
    problem = _only(_with_node("m", node))
    assert problem.path == "nodes.m.node.output"
    assert "reads nodes.b" in problem.message


def test_three_different_problems_are_reported_together() -> None:
    raw = _valid()
    raw["nodes"]["b"]["depends_on"] = ["ghost"]  # unknown node (and b now reads a without depending on it)
    raw["nodes"]["c"] = {"kind": "sleep", "duration": "1 fortnight"}  # bad duration
    raw["nodes"]["d"] = {"kind": "transform", "output": "{{ oops"}  # syntax error
    with pytest.raises(DefinitionError) as caught:
        validate_definition(raw)
    by_path = {p.path: p.message for p in caught.value.problems}
    assert set(by_path) == {"nodes.b.depends_on[0]", "nodes.b.output", "nodes.c.duration", "nodes.d.output"}
    text = str(caught.value)
    assert text.splitlines()[0] == "invalid workflow definition (4 problems):"
    for path, message in by_path.items():
        assert f"{path}: {message}" in text.splitlines()
    assert caught.value.code == "invalid_definition"
    assert caught.value.to_dict()["detail"]["problems"][0].keys() == {"path", "message"}


# --- inputs -------------------------------------------------------------------------------------------


def _typed() -> WorkflowDefinition:
    return validate_definition(
        {
            "name": "typed",
            "inputs": {
                "s": {"type": "string", "required": True},
                "n": {"type": "number", "default": 0.5},
                "i": {"type": "integer"},
                "b": {"type": "boolean", "default": False},
                "a": {"type": "array", "default": []},
                "o": {"type": "object"},
                "x": {},
            },
            "nodes": {"t": {"kind": "transform"}},
        }
    )


def test_inputs_get_defaults_and_every_declared_name() -> None:
    assert validate_inputs(_typed(), {"s": "hi"}) == {
        "s": "hi",
        "n": 0.5,
        "i": None,
        "b": False,
        "a": [],
        "o": None,
        "x": None,
    }


def test_defaults_are_not_shared_between_runs() -> None:
    defn = _typed()
    first = validate_inputs(defn, {"s": "hi"})
    first["a"].append(1)
    assert validate_inputs(defn, {"s": "hi"})["a"] == []


def test_given_values_are_kept_and_normalized() -> None:
    result = validate_inputs(_typed(), {"s": "", "n": 3, "i": 4.0, "b": True, "a": (1, 2), "o": {"k": 1}, "x": [None]})
    assert result == {"s": "", "n": 3, "i": 4, "b": True, "a": [1, 2], "o": {"k": 1}, "x": [None]}
    assert isinstance(result["i"], int)


def test_null_means_not_given() -> None:
    assert validate_inputs(_typed(), {"s": "x", "n": None})["n"] == 0.5
    with pytest.raises(InputError, match="missing required input 's'"):
        validate_inputs(_typed(), {"s": None})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("n", True, "expected number, got boolean (True)"),
        ("n", "1", "expected number, got string ('1')"),
        ("i", 1.5, "expected integer, got number (1.5)"),
        ("i", False, "expected integer, got boolean (False)"),
        ("b", 1, "expected boolean, got integer (1)"),
        ("a", "xs", "expected array, got string ('xs')"),
        ("o", [], "expected object, got array ([])"),
        ("s", 5, "expected string, got integer (5)"),
    ],
)
def test_wrong_types(name: str, value: Any, message: str) -> None:
    given = {"s": "ok", name: value}
    with pytest.raises(InputError) as caught:
        validate_inputs(_typed(), given)
    assert caught.value.problems == [Problem(path=f"inputs.{name}", message=message)]


def test_every_input_problem_is_reported_together() -> None:
    with pytest.raises(InputError) as caught:
        validate_inputs(_typed(), {"n": "x", "ss": 1, "extra": 2})
    assert [p.path for p in caught.value.problems] == ["inputs.ss", "inputs.extra", "inputs.s", "inputs.n"]
    assert caught.value.problems[0].message == "unknown input 'ss'; did you mean 's'?"
    assert caught.value.problems[1].message == "unknown input 'extra'; declared inputs: s, n, i, b, a, o, x"
    assert caught.value.code == "invalid_inputs"
    assert "inputs.extra: unknown input 'extra'" in str(caught.value)


def test_inputs_must_be_a_mapping() -> None:
    with pytest.raises(InputError, match="must be a mapping"):
        validate_inputs(_typed(), ["s"])  # type: ignore[arg-type]
