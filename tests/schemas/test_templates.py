"""Templates: native values vs text, the filters the examples use, errors, the sandbox, analysis."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.exceptions import TemplateError
from schemas.templates import (
    check_syntax,
    condition_template,
    evaluate_condition,
    is_single_expression,
    join_path,
    references,
    render,
    undeclared_names,
    walk_strings,
)

CONTEXT: dict[str, Any] = {
    "inputs": {"tickets": ["Disk FULL urgent", "Printer jam"], "webhook": "http://hook.local/x", "n": 3},
    "nodes": {
        "normalize": {"output": {"items": ["disk full urgent", "printer jam"]}, "status": "succeeded"},
        "score": {
            "output": [
                {"text": "disk full urgent", "urgent": True},
                {"text": "printer jam", "urgent": False},
            ],
            "status": "succeeded",
        },
        "skipped": {"output": None, "status": "skipped"},
    },
    "run": {"id": "run-1", "workflow": "triage", "version": 2, "tenant": "acme"},
}


# --- native values and text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ inputs.n }}", 3),
        ("{{ inputs.n * 1.5 }}", 4.5),
        ("{{ inputs.n > 2 }}", True),
        ("{{ inputs.tickets }}", ["Disk FULL urgent", "Printer jam"]),
        ("{{ {'a': inputs.n} }}", {"a": 3}),
        ("{{ none }}", None),
        ("{{ nodes.skipped.output }}", None),
        ("  {{ inputs.n }}\n", 3),
        ("{{- inputs.n -}}", 3),
        ("{{ '}}' }}", "}}"),
        ("{{ run.tenant }}", "acme"),
    ],
)
def test_a_single_expression_yields_its_native_value(template: str, expected: Any) -> None:
    assert render(template, CONTEXT) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("n={{ inputs.n }}", "n=3"),
        ("{{ inputs.n }}{{ inputs.n }}", "33"),
        ("{{ inputs.n }} and {{ inputs.n }}", "3 and 3"),
        ("{% if inputs.n %}yes{% endif %}", "yes"),
        ("plain text", "plain text"),
        ("line\n", "line\n"),
        ("{{ run.workflow }} v{{ run.version }}\n", "triage v2\n"),
    ],
)
def test_other_strings_render_as_text(template: str, expected: str) -> None:
    assert render(template, CONTEXT) == expected


def test_render_walks_dicts_and_lists_and_passes_other_values_through() -> None:
    value = {"a": ["{{ inputs.n }}", 1, None, True], "b": {"c": "x{{ inputs.n }}"}, "{{ key }}": 2.5}
    assert render(value, CONTEXT) == {"a": [3, 1, None, True], "b": {"c": "x3"}, "{{ key }}": 2.5}
    assert render(7, CONTEXT) == 7


def test_map_lower_on_a_list_of_strings() -> None:
    assert render("{{ inputs.tickets | map('lower') | list }}", CONTEXT) == [
        "disk full urgent",
        "printer jam",
    ]


def test_an_iterator_result_becomes_a_list() -> None:
    assert render("{{ inputs.tickets | map('lower') }}", CONTEXT) == ["disk full urgent", "printer jam"]
    assert render("{{ range(3) }}", CONTEXT) == [0, 1, 2]


def test_selectattr_on_a_list_of_dicts() -> None:
    urgent = [{"text": "disk full urgent", "urgent": True}]
    assert render("{{ nodes.score.output | selectattr('urgent') | list }}", CONTEXT) == urgent
    assert render("{{ nodes.score.output | selectattr('urgent') | list | length }}", CONTEXT) == 1
    assert render("{{ nodes.score.output | map(attribute='text') | join(', ') }}", CONTEXT) == (
        "disk full urgent, printer jam"
    )


def test_a_data_key_wins_over_a_dict_method() -> None:
    # Jinja alone would return dict.items here; workflow data is JSON, so the key must win.
    assert render("{{ nodes.normalize.output.items }}", CONTEXT) == ["disk full urgent", "printer jam"]
    assert render("{{ nodes.normalize.output['items'] }}", CONTEXT) == ["disk full urgent", "printer jam"]
    assert render("{{ {'a': 1}.items() | list }}", CONTEXT) == [("a", 1)]


def test_map_item_and_index_in_scope() -> None:
    inner = {"text": "{{ item }}", "urgent": "{{ 'urgent' in item }}", "n": "{{ index }}"}
    outputs = [render(inner, {**CONTEXT, "item": item, "index": i}) for i, item in enumerate(["a urgent", "b"])]
    assert outputs == [{"text": "a urgent", "urgent": True, "n": 0}, {"text": "b", "urgent": False, "n": 1}]


# --- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{{ inputs.missing }}",
        "x {{ inputs.missing }} y",
        "{{ nodes.absent.output }}",
        "{{ undefined_name }}",
        "{{ inputs.missing | length }}",
    ],
)
def test_undefined_names_raise_template_error(template: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template, CONTEXT)
    assert caught.value.template == template
    assert caught.value.code == "template_error"
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ inputs.tickets + 1 }}", "TypeError"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ inputs.n", "unexpected end of template"),
        ("{% if %}", "Expected an expression"),
    ],
)
def test_evaluation_and_syntax_errors_raise_template_error(template: str, reason: str) -> None:
    with pytest.raises(TemplateError, match=reason):
        render(template, CONTEXT)


def test_error_reports_the_path_inside_the_value() -> None:
    with pytest.raises(TemplateError) as caught:
        render({"body": {"items": ["ok", "{{ nope }}"]}}, CONTEXT, path="nodes.n")
    assert caught.value.path == "nodes.n.body.items[1]"
    assert str(caught.value).startswith("nodes.n.body.items[1]: ")
    assert caught.value.to_dict()["detail"]["template"] == "{{ nope }}"


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "x{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ inputs.tickets.__class__ }}",
        "{{ run.__init__.__globals__ }}",
    ],
)
def test_the_sandbox_refuses_python_internals(template: str) -> None:
    with pytest.raises(TemplateError, match="unsafe"):
        render(template, CONTEXT)


@pytest.mark.parametrize(
    "template",
    ["{{ inputs.tickets.append(1) }}", "{{ inputs.tickets.append }}", "{% set _ = run.update({'id': 1}) %}x"],
)
def test_the_sandbox_refuses_mutating_context_data(template: str) -> None:
    # The context is the run's recorded state, by reference: a template must never change it.
    with pytest.raises(TemplateError, match="unsafe"):
        render(template, CONTEXT)
    assert CONTEXT["inputs"]["tickets"] == ["Disk FULL urgent", "Printer jam"]


@pytest.mark.parametrize(
    "template", ["{{ 'x' * 10**8 }}", "{{ [0] * 10**7 }}", "{{ 10 ** 100000 }}", "{{ range(10**9) }}"]
)
def test_oversized_results_are_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        render(template, CONTEXT)


# --- conditions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("{{ nodes.score.output | selectattr('urgent') | list | length > 0 }}", True),
        ("nodes.score.output | selectattr('urgent') | list | length > 5", False),
        ("inputs.n", True),
        ("{{ [] }}", False),
        ("none", False),
        ("false", False),
        ("'text'", True),
    ],
)
def test_evaluate_condition(expr: str, expected: bool) -> None:
    assert evaluate_condition(expr, CONTEXT) is expected


def test_a_condition_must_be_one_expression() -> None:
    with pytest.raises(TemplateError, match="single expression"):
        evaluate_condition("{{ false }} and {{ false }}", CONTEXT)
    with pytest.raises(TemplateError):
        evaluate_condition("inputs.absent", CONTEXT)
    with pytest.raises(TemplateError):
        evaluate_condition("1 +", CONTEXT)


def test_condition_template() -> None:
    assert condition_template("x > 1") == "{{ x > 1 }}"
    assert condition_template("{{ x > 1 }}") == "{{ x > 1 }}"


@pytest.mark.parametrize(
    ("source", "single"),
    [
        ("{{ a }}", True),
        (" {{ a | b }} ", True),
        ("{{ a }} {{ b }}", False),
        ("x{{ a }}", False),
        ("a", False),
    ],
)
def test_is_single_expression(source: str, single: bool) -> None:
    assert is_single_expression(source) is single


# --- analysis -----------------------------------------------------------------------------------------


def test_references() -> None:
    value = {
        "a": "{{ nodes.one.output }} and {{ nodes['two'].output }}",
        "b": [
            "{% for x in nodes.three.output %}{{ x }}{% endfor %}",
            "{{ nodes[name] }}",
            "plain nodes.four",
        ],
        "c": "{{ inputs.tickets }}",
        "d": 5,
    }
    assert references(value) == {"one", "two", "three"}
    assert references(value, root="inputs") == {"tickets"}
    assert references("{{ broken") == set()


def test_references_in_the_triage_templates() -> None:
    assert references("{{ nodes.score.output | selectattr('urgent') | list | length > 0 }}") == {"score"}
    assert references("{{ nodes.normalize.output['items'] }}") == {"normalize"}


def test_check_syntax_reports_each_broken_string_with_its_path() -> None:
    value = {"ok": "{{ a }}", "bad": ["fine", "{{ a"], "nested": {"x y": "{% if %}"}}
    problems = check_syntax(value)
    assert [path for path, _ in problems] == ["bad[1]", "nested['x y']"]
    assert all("syntax error" in message for _, message in problems)
    assert check_syntax("{{ fine }}") == []


def test_undeclared_names() -> None:
    source = "{% set y = 1 %}{{ y + x }}{% for i in z %}{{ i }}{% endfor %}{{ range(2) | list }}"
    assert undeclared_names(source) == {"x", "z"}
    assert undeclared_names("no template") == set()


def test_walk_strings_and_join_path() -> None:
    assert list(walk_strings({"a": ["x", {"b": "y"}], "c-d": "z", "n": 1})) == [
        ("a[0]", "x"),
        ("a[1].b", "y"),
        ("['c-d']", "z"),
    ]
    assert join_path("", "a") == "a"
    assert join_path("nodes.a", 0) == "nodes.a[0]"
    assert join_path("headers", "Content-Type") == "headers['Content-Type']"
