"""Templates in workflow definitions: rendering, conditions, and static analysis.

Every string in a node's templated fields, a ``when`` and the workflow's ``outputs`` is a Jinja2 template
evaluated in a sandbox. A string that is exactly one ``{{ expression }}`` yields the expression's native
value (a list stays a list); any other string renders as text. The orchestrator renders on its hot path, so
the environment is built once and compiled templates are cached by their source text.

This module never reads the clock, the network or files: a template sees only the context it is given.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.environment import Template, TemplateExpression
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from schemas.exceptions import TemplateError

__all__ = [
    "CONTEXT_NAMES",
    "MAP_ITEM_NAMES",
    "check_syntax",
    "condition_template",
    "evaluate_condition",
    "is_single_expression",
    "join_path",
    "references",
    "render",
    "undeclared_names",
    "walk_strings",
]

#: The names every template may read (filled by the orchestrator).
CONTEXT_NAMES = frozenset({"inputs", "nodes", "run"})
#: The extra names in scope inside the inner node of a ``map``.
MAP_ITEM_NAMES = frozenset({"item", "index"})

_MARKERS = ("{{", "{%", "{#")
# `{{ expr }}` alone, allowing surrounding whitespace and Jinja's whitespace-control signs.
_SINGLE = re.compile(r"\s*\{\{[-+]?(?P<expr>.*?)[-+]?\}\}\s*", re.DOTALL)

# Caps that keep one template from stalling the orchestrator (which evaluates pure nodes inline):
# `'x' * 10**9` or `10 ** 10 ** 9` would otherwise take a worker's partitions down with it.
_MAX_SEQUENCE = 1_000_000
_MAX_POWER_BITS = 100_000


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, with data-first attribute access on mappings and size caps on ``*`` and ``**``.

    Immutable: the context holds the run's recorded state by reference, so ``xs.append(1)`` in a template
    would change it behind the event log's back.
    """

    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Jinja prefers Python attributes, so `output.items` on {"items": [...]} would be dict.items.
        # Workflow data is JSON: a key that exists wins; methods (`d.items()`) still work otherwise.
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        # Integer powers are exact, so their cost grows with the size of the result.
        if (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and abs(left) > 1
            and left.bit_length() * right > _MAX_POWER_BITS
        ):
            raise SecurityError(f"result of ** would exceed {_MAX_POWER_BITS} bits")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) and len(seq) * times > _MAX_SEQUENCE:
                    raise SecurityError(f"result of * would exceed {_MAX_SEQUENCE} items")
        return super().call_binop(context, operator, left, right)


_ENV = _Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


class _Literal:
    """A string with no template syntax: rendered as itself."""


_LITERAL = _Literal()


@functools.lru_cache(maxsize=4096)
def _compile(source: str) -> Template | TemplateExpression | _Literal:
    """Compile once per distinct source string; raises jinja2.TemplateSyntaxError."""
    if not any(marker in source for marker in _MARKERS):
        return _LITERAL
    if is_single_expression(source):
        match = _SINGLE.fullmatch(source)
        assert match is not None  # is_single_expression guarantees the shape
        return _ENV.compile_expression(match.group("expr"), undefined_to_none=False)
    return _ENV.from_string(source)


@functools.lru_cache(maxsize=4096)
def _parse(source: str) -> nodes.Template:
    return _ENV.parse(source)


def is_single_expression(source: str) -> bool:
    """Whether ``source`` is exactly one ``{{ expression }}``, ignoring surrounding whitespace.

    Raises :class:`jinja2.TemplateSyntaxError` if ``source`` does not parse.
    """
    if _SINGLE.fullmatch(source) is None:
        return False
    # The regex alone would accept "{{ a }} and {{ b }}"; the parse tree tells one expression from two.
    body = _parse(source).body
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return False
    parts = [n for n in body[0].nodes if not (isinstance(n, nodes.TemplateData) and not n.data.strip())]
    return len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData)


def condition_template(expr: str) -> str:
    """``expr`` as a template: ``when`` accepts ``"{{ x > 1 }}"`` or the bare expression ``"x > 1"``."""
    if any(marker in expr for marker in _MARKERS):
        return expr
    return "{{ " + expr + " }}"


def join_path(base: str, key: str | int) -> str:
    """Extend a JSON-ish path: ``join_path("nodes.a", "body")`` is ``nodes.a.body``, an int gives ``[i]``,
    a key that is not an identifier gives ``['a key']``."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    if key.isidentifier():
        return f"{base}.{key}" if base else key
    return f"{base}[{key!r}]"


def walk_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside ``value`` (dicts and lists, recursively) with its path, in document order."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from walk_strings(item, join_path(path, key if isinstance(key, str) else str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from walk_strings(item, join_path(path, index))


def render(value: Any, context: Mapping[str, Any], *, path: str = "") -> Any:
    """Render every string inside ``value`` against ``context``; other values pass through unchanged.

    A string that is exactly one ``{{ expression }}`` yields the expression's native value (lists, numbers,
    booleans, dicts, ``None``; an iterator such as ``map(...)`` without ``| list`` becomes a list); any other
    string renders as text. Dict keys are not rendered. Raises :class:`TemplateError` (with ``path``, the
    template and the reason) on a syntax error, an undefined name, a type error or a sandbox violation.
    """
    if isinstance(value, str):
        return _render_string(value, context, path)
    if isinstance(value, Mapping):
        return {key: render(item, context, path=join_path(path, str(key))) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, context, path=join_path(path, index)) for index, item in enumerate(value)]
    return value


def evaluate_condition(expr: str, context: Mapping[str, Any]) -> bool:
    """The truthiness of a ``when``: ``"{{ expression }}"`` or a bare expression.

    Raises :class:`TemplateError` if it fails to evaluate or is not a single expression (text such as
    ``"{{ a }} and {{ b }}"`` would always be a non-empty, truthy string).
    """
    source = condition_template(expr)
    try:
        single = is_single_expression(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(_reason(exc), template=expr, path="when") from exc
    if not single:
        raise TemplateError("a condition must be a single expression", template=expr, path="when")
    return bool(_render_string(source, context, "when"))


def references(value: Any, *, root: str = "nodes") -> set[str]:
    """The keys read statically from ``root`` by the templates in ``value``: ``nodes.X`` and ``nodes['X']``.

    With ``root="inputs"`` it gives the input names read. Strings that do not parse are skipped
    (:func:`check_syntax` reports them); computed keys (``nodes[name]``) cannot be known and are skipped.
    """
    found: set[str] = set()
    for _, source in walk_strings(value):
        if not any(marker in source for marker in _MARKERS):
            continue
        try:
            tree = _parse(source)
        except jinja2.TemplateSyntaxError:
            continue
        for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
            if isinstance(node, nodes.Getattr) and _is_name(node.node, root):
                found.add(node.attr)
            elif (
                isinstance(node, nodes.Getitem)
                and _is_name(node.node, root)
                and isinstance(node.arg, nodes.Const)
                and isinstance(node.arg.value, str)
            ):
                found.add(node.arg.value)
    return found


def _is_name(node: nodes.Node, name: str) -> bool:
    return isinstance(node, nodes.Name) and node.name == name


def undeclared_names(source: str) -> set[str]:
    """The variables ``source`` reads that it does not define itself and that are not Jinja globals
    (``range``, ``dict`` ...). Raises :class:`jinja2.TemplateSyntaxError` if it does not parse."""
    if not any(marker in source for marker in _MARKERS):
        return set()
    return set(meta.find_undeclared_variables(_parse(source))) - set(_ENV.globals)


def check_syntax(value: Any) -> list[tuple[str, str]]:
    """``(path, message)`` for each string inside ``value`` that is not a valid template."""
    problems: list[tuple[str, str]] = []
    for path, source in walk_strings(value):
        if not any(marker in source for marker in _MARKERS):
            continue
        try:
            _compile(source)
        except jinja2.TemplateSyntaxError as exc:
            problems.append((path, f"template syntax error: {_reason(exc)}"))
    return problems


def _render_string(source: str, context: Mapping[str, Any], path: str) -> Any:
    try:
        compiled = _compile(source)
        if isinstance(compiled, _Literal):
            return source
        if isinstance(compiled, Template):
            return compiled.render(context)
        result = compiled(context)
        if isinstance(result, Undefined):
            # Rendering it raises the UndefinedError (or SecurityError) that explains what is missing.
            str(result)
        return _native(result)
    except TemplateError:
        raise
    # Anything a user's expression raises (TypeError, ZeroDivisionError, SecurityError, UndefinedError ...)
    # is a failure of that template, not of the engine: report it as such.
    except Exception as exc:
        raise TemplateError(_reason(exc), template=source, path=path) from exc


def _native(value: Any) -> Any:
    # `{{ xs | map('lower') }}` evaluates to a generator: materialize anything that is only iterable, so
    # outputs are plain JSON-like data that can be recorded in an event.
    if value is None or isinstance(value, str | bytes | int | float | list | tuple | Mapping):
        if isinstance(value, str) and type(value) is not str:
            return str(value)  # jinja2's Markup and other str subclasses
        return value
    if isinstance(value, Iterable):
        return list(value)
    return value


def _reason(exc: Exception) -> str:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"{exc.message} (line {exc.lineno})" if exc.lineno else str(exc.message)
    if isinstance(exc, jinja2.TemplateError):
        return exc.message or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"
