"""The workflow definition: the models a user's YAML or JSON is validated into.

These models are the contract between whoever writes a workflow (users, ``awe workflow apply``), the
definitions topic, and the orchestrator that runs it. They are frozen and forbid unknown fields, so a typo
is reported instead of silently ignored. Cross-field checks that need the whole document (unknown nodes in
``depends_on``, cycles, templates reading nodes they do not depend on) live in :mod:`schemas.validation`.
Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from schemas.ai import PROVIDERS, ChatMessage, ModelRef, ResponseSpec
from schemas.durations import Duration
from schemas.exceptions import DefinitionError, Problem
from schemas.graph import cycle_message, find_cycles, transitive_deps
from schemas.plugins import PLUGIN_REF_PATTERN, PluginRef

__all__ = [
    "DEFAULT_RETRY",
    "IDENTIFIER_PATTERN",
    "NODE_TYPES",
    "PURE_KINDS",
    "WORKFLOW_NAME_PATTERN",
    "AiNode",
    "ApprovalNode",
    "HttpNode",
    "InputSpec",
    "InputType",
    "MapNode",
    "NodeBase",
    "NodeSpec",
    "RetryPolicy",
    "SleepNode",
    "TransformNode",
    "WasmLimits",
    "WasmNode",
    "WorkflowDefinition",
    "json_type_name",
]

WORKFLOW_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
#: Node ids and input names: identifiers, so templates can say ``nodes.score`` and ``inputs.tickets``.
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
InputType = Literal["string", "number", "integer", "boolean", "array", "object", "any"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def json_type_name(value: Any) -> str:
    """The JSON type name of a Python value (``boolean``, ``integer``, ``array`` ...), for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


class InputSpec(_Model):
    """One declared input of a workflow.

    Type rules (also used by :func:`schemas.validation.validate_inputs`): a boolean is not a number nor an
    integer; an integer is a number; an integer-valued float (``3.0``) is accepted as an integer, because
    JSON producers such as JavaScript cannot tell them apart.
    """

    type: InputType = "any"
    required: bool = False
    default: Any = None
    description: str | None = None

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` has this input's declared type (``None`` is never accepted unless ``any``)."""
        match self.type:
            case "any":
                return True
            case "string":
                return isinstance(value, str)
            case "boolean":
                return isinstance(value, bool)
            case "number":
                return isinstance(value, int | float) and not isinstance(value, bool)
            case "integer":
                if isinstance(value, bool):
                    return False
                return isinstance(value, int) or (
                    isinstance(value, float) and math.isfinite(value) and value.is_integer()
                )
            case "array":
                return isinstance(value, list | tuple)
            case "object":
                return isinstance(value, Mapping)
        return False  # pragma: no cover - Literal exhausts the cases

    def coerce(self, value: Any) -> Any:
        """``value`` in its canonical form (``3.0`` → ``3`` for integers, tuples → lists); call after
        :meth:`accepts`."""
        if self.type == "integer" and isinstance(value, float):
            return int(value)
        if isinstance(value, tuple):
            return list(value)
        return value

    @model_validator(mode="after")
    def _check_default(self) -> InputSpec:
        if self.required and "default" in self.model_fields_set and self.default is not None:
            raise ValueError("a required input cannot have a default (the default would never be used)")
        if self.default is not None and not self.accepts(self.default):
            raise ValueError(f"default must be of type {self.type}, got {json_type_name(self.default)}")
        return self


class RetryPolicy(_Model):
    """How a failed attempt of a node is retried: only errors the executor marks retryable are retried.

    Deterministic by design (no jitter): the orchestrator turns :meth:`delay` into a durable timer, and
    replaying a run must compute the same timers.
    """

    max_attempts: int = Field(default=3, ge=1)
    backoff: Literal["exponential", "fixed"] = "exponential"
    initial_delay: Duration = 1.0
    max_delay: Duration = 30.0
    multiplier: float = Field(default=2.0, ge=1)

    @model_validator(mode="after")
    def _check_delays(self) -> RetryPolicy:
        if self.max_delay < self.initial_delay:
            raise ValueError(
                f"max_delay ({self.max_delay:g}s) must not be less than initial_delay ({self.initial_delay:g}s)"
            )
        return self

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based) before the next one.

        ``exponential``: ``min(initial_delay * multiplier ** (attempt - 1), max_delay)``;
        ``fixed``: ``initial_delay``.
        """
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt}")
        if self.backoff == "fixed":
            return self.initial_delay
        try:
            raw = self.initial_delay * self.multiplier ** (attempt - 1)
        except OverflowError:
            # A long-running retry loop must not crash the orchestrator once the power stops fitting a float.
            return self.max_delay
        return min(raw, self.max_delay)


#: The policy used for a node kind that retries when the node sets no ``retry`` of its own.
DEFAULT_RETRY = RetryPolicy()


def _when_from_bool(value: Any) -> Any:
    # `when: false` in YAML is a bool; keep it as the equivalent expression rather than reject it.
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class NodeBase(_Model):
    """Fields every node kind has. See ``docs/workflows.md`` for their semantics."""

    #: The fields the orchestrator renders as templates before running (or dispatching) the node.
    template_fields: ClassVar[tuple[str, ...]] = ()
    #: Whether ``retry`` means anything for this kind (it is rejected where it would be ignored).
    supports_retry: ClassVar[bool] = True
    #: Whether ``timeout`` means anything for this kind (per attempt; an approval's deadline).
    supports_timeout: ClassVar[bool] = True

    depends_on: list[str] = Field(default_factory=list)
    when: Annotated[
        str | None,
        BeforeValidator(_when_from_bool),
        WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "boolean"}, {"type": "null"}]}, mode="validation"),
    ] = None
    retry: RetryPolicy | None = None
    timeout: Duration | None = None
    trigger: Literal["all_success", "all_done"] = "all_success"
    on_error: Literal["fail", "continue"] = "fail"
    description: str | None = None


class TransformNode(NodeBase):
    """Evaluates ``output`` (any JSON value whose strings are templates) inside the orchestrator."""

    template_fields: ClassVar[tuple[str, ...]] = ("output",)
    # Evaluated inline by the orchestrator: nothing to time out, and a template error fails the same way
    # every time.
    supports_retry: ClassVar[bool] = False
    supports_timeout: ClassVar[bool] = False

    kind: Literal["transform"]
    output: Any = None


class MapNode(NodeBase):
    """Runs ``node`` once per item of the list ``over`` evaluates to; its output is the list of results.

    In this version the inner node is a transform, with ``item`` and ``index`` in scope; it takes no
    ``depends_on``, ``when``, ``retry``, ``timeout``, ``trigger`` or ``on_error`` of its own.
    """

    template_fields: ClassVar[tuple[str, ...]] = ("over",)
    supports_retry: ClassVar[bool] = False
    supports_timeout: ClassVar[bool] = False

    kind: Literal["map"]
    over: str
    node: TransformNode


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
_METHODS: tuple[str, ...] = get_args(HttpMethod)


class HttpNode(NodeBase):
    """An HTTP request made by the http executor; ``url``, ``headers``, ``body`` and ``query`` are templates."""

    template_fields: ClassVar[tuple[str, ...]] = ("url", "headers", "body", "query")

    kind: Literal["http"]
    method: Annotated[
        HttpMethod,
        BeforeValidator(_upper),
        WithJsonSchema({"enum": [*_METHODS, *(m.lower() for m in _METHODS)]}, mode="validation"),
    ] = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    query: dict[str, Any] = Field(default_factory=dict)


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _is_template(value: str) -> bool:
    return "{{" in value or "{%" in value


class AiNode(NodeBase):
    """A call to a model through one of the providers; the prompt, messages and system are templates.

    ``provider`` and ``model`` may be templates too (``awe dev`` picks the provider by the keys it finds);
    a literal provider must be one awe knows. ``fallback`` lists the models tried in order, each with the
    node's retry policy afresh, once the attempts of the one before were spent on retryable errors.
    """

    template_fields: ClassVar[tuple[str, ...]] = ("provider", "model", "system", "prompt", "messages")

    kind: Literal["ai"]
    provider: str
    model: str
    system: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: Annotated[list[str] | None, BeforeValidator(_listify)] = None
    response: ResponseSpec = Field(default_factory=ResponseSpec)
    fallback: list[ModelRef] = Field(default_factory=list)
    stream: bool = True

    @model_validator(mode="after")
    def _check(self) -> AiNode:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("an ai node takes exactly one of prompt or messages")
        for name in (self.provider, *(f.provider for f in self.fallback)):
            if not _is_template(name) and name not in PROVIDERS:
                raise ValueError(f"unknown provider {name!r}; known providers: {', '.join(PROVIDERS)}")
        return self

    def candidates(self) -> list[ModelRef]:
        """The primary model, then the fallbacks, in the order they are tried."""
        return [ModelRef(provider=self.provider, model=self.model), *self.fallback]


class SleepNode(NodeBase):
    """Waits ``duration`` on a durable timer, then succeeds with output ``null``."""

    supports_retry: ClassVar[bool] = False
    supports_timeout: ClassVar[bool] = False

    kind: Literal["sleep"]
    duration: Duration


class ApprovalNode(NodeBase):
    """Waits for a signal named after the node; ``timeout`` is the deadline for that signal."""

    supports_retry: ClassVar[bool] = False

    kind: Literal["approval"]


class WasmLimits(_Model):
    """Limits a ``wasm`` node sets for each call; each can only tighten the worker's own (``AWE_WASM_*``)."""

    fuel: int | None = Field(default=None, ge=1, description="instructions, roughly")
    memory: Annotated[ByteSize, Field(gt=0)] | None = Field(default=None, description="linear memory, e.g. 16MiB")
    deadline: Duration | None = Field(default=None, description="wall-clock time of one call")
    output: Annotated[ByteSize, Field(gt=0)] | None = Field(default=None, description="output bytes, e.g. 64KiB")


def _plugin_ref(value: str) -> str:
    PluginRef.parse(value)  # its ValueError says which forms are accepted
    return value


class WasmNode(NodeBase):
    """A call to a WASM plugin (``docs/plugins.md``); ``input`` is a template, the output is the plugin's JSON."""

    template_fields: ClassVar[tuple[str, ...]] = ("input",)

    kind: Literal["wasm"]
    plugin: Annotated[
        str,
        AfterValidator(_plugin_ref),
        WithJsonSchema({"type": "string", "pattern": PLUGIN_REF_PATTERN}, mode="validation"),
    ] = Field(description="name, name@version or sha256:<hex>")
    input: Any = None
    limits: WasmLimits = Field(default_factory=WasmLimits)


NodeSpec = Annotated[
    TransformNode | MapNode | HttpNode | AiNode | WasmNode | SleepNode | ApprovalNode,
    Field(discriminator="kind"),
]

#: Kinds evaluated inside the orchestrator's ``decide`` rather than by an executor.
PURE_KINDS: tuple[str, ...] = ("transform", "map")

#: Every node kind, by its ``kind`` tag, in the order the documentation lists them.
NODE_TYPES: dict[str, type[NodeBase]] = {
    "transform": TransformNode,
    "map": MapNode,
    "http": HttpNode,
    "ai": AiNode,
    "wasm": WasmNode,
    "sleep": SleepNode,
    "approval": ApprovalNode,
}


class WorkflowDefinition(_Model):
    """A workflow: declared inputs, a graph of nodes, and the outputs rendered when a run succeeds.

    Construct it through :func:`schemas.validation.validate_definition`, which adds the graph and template
    checks; the graph methods here assume those checks passed (they ignore unknown ``depends_on`` entries).
    """

    name: str = Field(pattern=WORKFLOW_NAME_PATTERN)
    description: str | None = None
    inputs: dict[Identifier, InputSpec] = Field(default_factory=dict)
    nodes: dict[Identifier, NodeSpec] = Field(min_length=1)
    outputs: dict[str, Any] = Field(default_factory=dict)

    def digest(self) -> str:
        """SHA-256 hex of the canonical JSON (sorted keys, defaults included) of this definition.

        Two definitions that mean the same thing (``1s`` vs ``1000ms``, keys in another order, a default
        spelled out) have the same digest; ``awe workflow apply`` registers a new version only when it
        changes.
        """
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def upstream(self, node_id: str) -> frozenset[str]:
        """Every node ``node_id`` depends on, directly or transitively; KeyError for an unknown node."""
        if node_id not in self.nodes:
            raise KeyError(node_id)
        return self._upstream[node_id]

    def dependants(self, node_id: str) -> frozenset[str]:
        """The nodes that list ``node_id`` in their ``depends_on`` (direct dependants only)."""
        if node_id not in self.nodes:
            raise KeyError(node_id)
        return self._dependants[node_id]

    def topological_order(self) -> list[str]:
        """Node ids, every node after all of its dependencies; ties broken by declaration order.

        Raises :class:`DefinitionError` if the graph has a cycle (a validated definition never does).
        """
        return list(self._order)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> WorkflowDefinition:
        """A copy, as :meth:`pydantic.BaseModel.model_copy`, with the derived graph recomputed on demand."""
        copied = super().model_copy(update=update, deep=deep)
        for cached in ("_graph", "_upstream", "_dependants", "_order"):
            copied.__dict__.pop(cached, None)
        return copied

    # The graph is derived once per (immutable) definition: the orchestrator asks on its hot path.
    @cached_property
    def _graph(self) -> dict[str, list[str]]:
        return {node_id: [d for d in node.depends_on if d in self.nodes] for node_id, node in self.nodes.items()}

    @cached_property
    def _upstream(self) -> dict[str, frozenset[str]]:
        return transitive_deps(self._graph)

    @cached_property
    def _dependants(self) -> dict[str, frozenset[str]]:
        found: dict[str, set[str]] = {node_id: set() for node_id in self.nodes}
        for node_id, deps in self._graph.items():
            for dep in deps:
                found[dep].add(node_id)
        return {node_id: frozenset(ids) for node_id, ids in found.items()}

    @cached_property
    def _order(self) -> tuple[str, ...]:
        cycles = find_cycles(self._graph)
        if cycles:
            raise DefinitionError(
                [Problem(path=f"nodes.{cycle[0]}.depends_on", message=cycle_message(cycle)) for cycle in cycles]
            )
        done: set[str] = set()
        order: list[str] = []
        pending = list(self.nodes)  # declaration order
        while pending:
            # The earliest-declared node whose dependencies are all done goes next: O(n^2), but n is small
            # and the result is cached.
            ready = next(n for n in pending if all(d in done for d in self._graph[n]))
            pending.remove(ready)
            done.add(ready)
            order.append(ready)
        return tuple(order)
