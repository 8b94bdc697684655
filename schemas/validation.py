"""Checking what users write: definition text, whole definitions, and the inputs of a run.

Every check reports every problem it finds, each with the path to what is wrong, in one error: a user
fixes a definition in one round trip, not one typo per ``awe workflow apply``. Field-level checks come from
the pydantic models in :mod:`schemas.definition`; the checks that need the whole document (the graph, the
templates) are here, and run on the raw document so they still run when some node has field errors.
Pure: parses text it is given, never reads files.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import jinja2
import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.definition import (
    NODE_TYPES,
    InputSpec,
    NodeBase,
    RetryPolicy,
    TransformNode,
    WorkflowDefinition,
    json_type_name,
)
from schemas.exceptions import DefinitionError, InputError, Problem
from schemas.graph import cycle_message, find_cycles, transitive_deps
from schemas.templates import (
    CONTEXT_NAMES,
    MAP_ITEM_NAMES,
    check_syntax,
    condition_template,
    is_single_expression,
    join_path,
    references,
    undeclared_names,
    walk_strings,
)

__all__ = ["load_definition", "load_definition_text", "validate_definition", "validate_inputs"]

_KINDS = ", ".join(NODE_TYPES)
# Fields of the inner node of a map that would be silently meaningless there.
# Each is given with its default, so a definition dumped with every field spelled out validates again.
_MAP_INNER_FORBIDDEN: dict[str, Any] = {
    "depends_on": [],
    "when": None,
    "retry": None,
    "timeout": None,
    "trigger": "all_success",
    "on_error": "fail",
}


# --- text ---------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe YAML that rejects duplicate keys: PyYAML keeps the last one silently, losing a node."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *base` then overriding a key is how merges are meant to be used
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:
            continue  # an unhashable key: the constructor below reports it
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first defined on line {first})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_definition_text(text: str) -> dict[str, Any]:
    """Parse a definition written in YAML or JSON (YAML is a superset of JSON) into a plain dict.

    Raises :class:`DefinitionError` with path ``""`` and the parser's line and column when the text does not
    parse, has a duplicate key, or is not a mapping at the top level.
    """
    try:
        document = yaml.load(text, Loader=_Loader)  # _Loader derives from SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = ": ".join(part for part in (exc.context, exc.problem) if part)
        raise DefinitionError([Problem(path="", message=f"{where}{what or 'invalid YAML'}")]) from exc
    except yaml.YAMLError as exc:
        raise DefinitionError([Problem(path="", message=f"invalid YAML: {exc}")]) from exc
    if not isinstance(document, dict):
        got = "an empty document" if document is None else _article(json_type_name(document))
        raise DefinitionError(
            [Problem(path="", message=f"a workflow definition must be a mapping at the top level, got {got}")]
        )
    return document


def load_definition(text: str) -> WorkflowDefinition:
    """:func:`load_definition_text` then :func:`validate_definition`."""
    return validate_definition(load_definition_text(text))


# --- definitions --------------------------------------------------------------------------------------


def validate_definition(raw: Mapping[str, Any]) -> WorkflowDefinition:
    """Validate a parsed definition, reporting every problem with its path in one :class:`DefinitionError`.

    Beyond the models' field checks: ``depends_on`` entries name existing nodes; there is no cycle; every
    template parses and reads only ``inputs``/``nodes``/``run`` (plus ``item``/``index`` inside a map),
    declared inputs, and nodes the reading node depends on, directly or transitively (``outputs`` may read
    any node); ``when`` is a single expression; ``retry``/``timeout`` appear only on kinds that use them.
    """
    problems: list[Problem] = []
    model: WorkflowDefinition | None = None
    document: Any = dict(raw) if isinstance(raw, Mapping) else raw
    try:
        model = WorkflowDefinition.model_validate(document)
    except ValidationError as exc:
        problems.extend(_from_pydantic(error, document) for error in exc.errors())
    if isinstance(document, Mapping):
        problems.extend(_check_document(document))
    unique = list(dict.fromkeys(problems))
    if unique or model is None:
        raise DefinitionError(unique)
    return model


def _check_document(raw: Mapping[str, Any]) -> Iterator[Problem]:
    nodes_raw = raw.get("nodes")
    if not isinstance(nodes_raw, Mapping):
        return
    node_ids = [key for key in nodes_raw if isinstance(key, str)]
    known = set(node_ids)
    inputs_raw = raw.get("inputs", {})
    declared_inputs = {k for k in inputs_raw if isinstance(k, str)} if isinstance(inputs_raw, Mapping) else None

    graph: dict[str, list[str]] = {}
    for node_id in node_ids:
        node = nodes_raw[node_id]
        deps = node.get("depends_on") if isinstance(node, Mapping) else None
        graph[node_id] = [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []
        if isinstance(deps, list):
            yield from _check_depends_on(node_id, deps, known)

    known_graph = {node_id: [d for d in deps if d in known] for node_id, deps in graph.items()}
    for cycle in find_cycles(known_graph):
        yield Problem(path=f"nodes.{cycle[0]}.depends_on", message=cycle_message(cycle))
    upstream = transitive_deps(known_graph)

    for node_id in node_ids:
        node = nodes_raw[node_id]
        if isinstance(node, Mapping):
            scope = _Scope(node_id, upstream[node_id] - {node_id}, known, declared_inputs)
            yield from _check_node(f"nodes.{node_id}", node, scope)

    outputs = raw.get("outputs")
    if isinstance(outputs, Mapping):
        yield from _check_templates("outputs", outputs, _Scope(None, frozenset(known), known, declared_inputs))


def _check_depends_on(node_id: str, deps: list[Any], known: set[str]) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, dep in enumerate(deps):
        path = f"nodes.{node_id}.depends_on[{index}]"
        if not isinstance(dep, str):
            continue  # the model reports the type
        if dep not in known:
            yield Problem(path=path, message=f"unknown node '{dep}'{_suggest(dep, known)}")
        elif dep in seen:
            yield Problem(path=path, message=f"'{dep}' is listed more than once")
        seen.add(dep)


@dataclass(frozen=True)
class _Scope:
    """What the templates of one node (or of ``outputs``, when ``node_id`` is None) may read."""

    node_id: str | None
    readable: frozenset[str]
    known: set[str]
    inputs: set[str] | None
    names: frozenset[str] = CONTEXT_NAMES

    def with_item(self) -> _Scope:
        return replace(self, names=self.names | MAP_ITEM_NAMES)


def _check_node(path: str, node: Mapping[str, Any], scope: _Scope) -> Iterator[Problem]:
    kind = node.get("kind")
    node_type = NODE_TYPES.get(kind) if isinstance(kind, str) else None

    when = node.get("when")
    if isinstance(when, str):
        yield from _check_condition(join_path(path, "when"), when, scope)

    if node_type is None or not isinstance(kind, str):
        return  # the model reports the kind; which fields are templates is unknown
    yield from _check_kind_fields(path, kind, node, node_type)
    for field in node_type.template_fields:
        if field in node:
            yield from _check_templates(join_path(path, field), node[field], scope)

    inner = node.get("node") if kind == "map" else None
    if isinstance(inner, Mapping):
        inner_path = join_path(path, "node")
        for field, default in _MAP_INNER_FORBIDDEN.items():
            if field in inner and inner[field] != default:
                yield Problem(
                    path=join_path(inner_path, field),
                    message=f"not allowed on the inner node of a map; set {field} on the map node itself",
                )
        for field in TransformNode.template_fields:
            if field in inner:
                yield from _check_templates(join_path(inner_path, field), inner[field], scope.with_item())


def _check_kind_fields(path: str, kind: str, node: Mapping[str, Any], node_type: type[NodeBase]) -> Iterator[Problem]:
    if "retry" in node and node["retry"] is not None and not node_type.supports_retry:
        yield Problem(
            path=join_path(path, "retry"),
            message=f"{_article(kind)} node is never retried; retry applies to nodes run by an executor (such as http)",
        )
    if "timeout" in node and node["timeout"] is not None and not node_type.supports_timeout:
        yield Problem(path=join_path(path, "timeout"), message=f"timeout has no effect on {_article(kind)} node")


def _check_condition(path: str, when: str, scope: _Scope) -> Iterator[Problem]:
    source = condition_template(when)
    errors = check_syntax(source)
    if errors:
        yield Problem(path=path, message=errors[0][1])
        return
    if not is_single_expression(source):
        yield Problem(
            path=path,
            message="when must be a single expression, such as '{{ x > 1 }}' or 'x > 1' "
            "(text around it would make it always true)",
        )
        return
    yield from _check_reads(path, source, scope)


def _check_templates(path: str, value: Any, scope: _Scope) -> Iterator[Problem]:
    for sub_path, source in walk_strings(value, path):
        errors = check_syntax(source)
        if errors:
            yield Problem(path=sub_path, message=errors[0][1])
        else:
            yield from _check_reads(sub_path, source, scope)


def _check_reads(path: str, source: str, scope: _Scope) -> Iterator[Problem]:
    try:
        names = undeclared_names(source)
    except jinja2.TemplateSyntaxError:  # pragma: no cover - callers checked the syntax
        return
    for name in sorted(names - scope.names):
        if name in MAP_ITEM_NAMES:
            message = f"'{name}' is only defined inside the inner node of a map"
        else:
            allowed = ", ".join(sorted(scope.names))
            message = f"unknown variable '{name}'; templates can read {allowed}{_suggest(name, scope.names)}"
        yield Problem(path=path, message=message)
    if "inputs" in names and scope.inputs is not None:
        for name in sorted(references(source, root="inputs") - scope.inputs):
            yield Problem(path=path, message=f"unknown input '{name}'{_suggest(name, scope.inputs)}")
    if "nodes" in names:
        for name in sorted(references(source, root="nodes")):
            if name not in scope.known:
                yield Problem(path=path, message=f"unknown node '{name}'{_suggest(name, scope.known)}")
            elif name == scope.node_id:
                yield Problem(path=path, message=f"a node cannot read its own output (nodes.{name})")
            elif name not in scope.readable:
                yield Problem(
                    path=path,
                    message=f"reads nodes.{name} but does not depend on it; add it to depends_on",
                )


# --- pydantic errors to problems ----------------------------------------------------------------------

_TYPE_WORDS = {
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def _from_pydantic(error: ErrorDetails, document: Any) -> Problem:
    loc, tags = _strip_tags(error["loc"], document)
    error_type = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    key_error = bool(loc) and loc[-1] == "[key]"
    if key_error:
        loc = loc[:-1]
    path = _path(loc)

    if error_type == "union_tag_invalid":
        return Problem(path=join_path(path, "kind"), message=f"unknown kind {ctx.get('tag')!r}; known kinds: {_KINDS}")
    if error_type == "union_tag_not_found" or (
        error_type == "model_attributes_type" and len(loc) == 2 and loc[0] == "nodes"
    ):
        if isinstance(value, Mapping):
            return Problem(path=join_path(path, "kind"), message=f"missing kind; known kinds: {_KINDS}")
        return Problem(path=path, message=f"a node must be a mapping with a kind, got {json_type_name(value)}")
    if error_type == "extra_forbidden":
        return Problem(path=path, message=_unknown_field(loc, tags))
    if error_type == "missing":
        return Problem(path=path, message="missing required field")
    if error_type == "string_pattern_mismatch":
        return Problem(path=path, message=_pattern_message(loc, key_error))
    if error_type == "literal_error":
        return Problem(path=path, message=f"must be one of {ctx.get('expected')}, got {value!r}")
    if error_type in ("value_error", "assertion_error"):
        return Problem(path=path, message=str(ctx.get("error", error["msg"])))
    if error_type in _TYPE_WORDS:
        return Problem(path=path, message=f"must be {_TYPE_WORDS[error_type]}, got {json_type_name(value)}")
    if error_type == "too_short" and loc == ("nodes",):
        return Problem(path=path, message="a workflow needs at least one node")
    if error_type == "greater_than_equal":
        return Problem(path=path, message=f"must be at least {ctx.get('ge')}, got {value!r}")
    message = error["msg"]
    return Problem(path=path, message=message[:1].lower() + message[1:])


def _strip_tags(loc: Sequence[str | int], document: Any) -> tuple[tuple[str | int, ...], dict[int, str]]:
    """Drop the discriminator tags pydantic puts in locations (``nodes.x.http.url``) by walking the document.

    Returns the location as the user wrote it and, by position, the kinds that were dropped.
    """
    kept: list[str | int] = []
    tags: dict[int, str] = {}
    current = document
    for part in loc:
        if (
            isinstance(part, str)
            and isinstance(current, Mapping)
            and part not in current
            and current.get("kind") == part
            and part in NODE_TYPES
        ):
            tags[len(kept)] = part
            continue
        kept.append(part)
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        else:
            current = None
    return tuple(kept), tags


def _path(loc: Iterable[str | int]) -> str:
    path = ""
    for part in loc:
        path = join_path(path, part)
    return path


def _unknown_field(loc: tuple[str | int, ...], tags: dict[int, str]) -> str:
    name = str(loc[-1])
    parent = loc[:-1]
    model, what = _model_at(parent, tags)
    fields = set(model.model_fields) if model is not None else set()
    message = f"unknown field '{name}'" + (f" for {what}" if what else "")
    suggestion = _suggest(name, fields)
    if suggestion:
        return message + suggestion
    owners = [kind for kind, node_type in NODE_TYPES.items() if name in node_type.model_fields]
    if owners and model is not None and issubclass(model, NodeBase):
        return message + f" (it belongs to {', '.join(owners)} nodes)"
    return message


def _model_at(
    parent: tuple[str | int, ...], tags: dict[int, str]
) -> tuple[type[WorkflowDefinition | InputSpec | RetryPolicy | NodeBase] | None, str]:
    if not parent:
        return WorkflowDefinition, "a workflow"
    if len(parent) == 2 and parent[0] == "inputs":
        return InputSpec, "an input"
    if parent[0] != "nodes" or len(parent) < 2:
        return None, ""
    kind = tags.get(2)
    rest = parent[2:]
    if rest and rest[-1] == "retry":
        return RetryPolicy, "a retry policy"
    if not rest and kind is not None:
        return NODE_TYPES[kind], _article(f"{kind} node")
    if rest == ("node",):
        return TransformNode, "the inner node of a map"
    return None, ""


def _pattern_message(loc: tuple[str | int, ...], key_error: bool) -> str:
    if loc == ("name",):
        return (
            "a workflow name is 1 to 100 characters: lower-case letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    if key_error and loc and loc[0] in ("nodes", "inputs"):
        what = "a node id" if loc[0] == "nodes" else "an input name"
        return (
            f"{what} must start with a letter or '_' and contain only letters, digits and '_', "
            f"so templates can read it as {loc[0]}.<name>"
        )
    return "does not match the required pattern"


def _article(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" or noun.startswith("http") else f"a {noun}"


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


# --- inputs -------------------------------------------------------------------------------------------


def validate_inputs(defn: WorkflowDefinition, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The complete inputs of a run: given values checked against the declared types, defaults applied.

    Every declared input is in the result (an absent optional input without a default is ``None``), in
    declaration order. ``None`` given for an input means "not given". Reports every problem in one
    :class:`InputError`: an unknown input name, a missing required input, a value of the wrong type
    (a boolean is not a number; ``3.0`` is accepted as the integer ``3``).
    """
    if not isinstance(inputs, Mapping):
        raise InputError([Problem(path="inputs", message=f"must be a mapping, got {json_type_name(inputs)}")])
    problems: list[Problem] = []
    for name in inputs:
        if name not in defn.inputs:
            hint = _suggest(str(name), defn.inputs) or f"; declared inputs: {', '.join(defn.inputs) or 'none'}"
            problems.append(Problem(path=join_path("inputs", str(name)), message=f"unknown input '{name}'{hint}"))
    result: dict[str, Any] = {}
    for name, spec in defn.inputs.items():
        path = join_path("inputs", name)
        value = inputs.get(name)
        if value is None:
            if spec.required:
                problems.append(Problem(path=path, message=f"missing required input '{name}' ({spec.type})"))
            # Deep-copied: a mutable default must not be shared between runs.
            result[name] = copy.deepcopy(spec.default)
        elif not spec.accepts(value):
            problems.append(
                Problem(
                    path=path,
                    message=f"expected {spec.type}, got {json_type_name(value)} ({_preview(value)})",
                )
            )
        else:
            result[name] = spec.coerce(value)
    if problems:
        raise InputError(problems)
    return result


def _preview(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
