"""Planning a fork: which nodes a new run takes from its parent's log and which it runs again.

The fork runs ``from_node`` and every node downstream of it again. Every other node that succeeded in the
parent is reused: its recorded output becomes the child's, and it is not run (a model is not asked
again). That includes nodes beside ``from_node`` that it does not depend on, as a checkpoint fork in
LangGraph keeps everything done before the point it forks from. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.definition import WorkflowDefinition
from schemas.exceptions import DefinitionError, ForkError
from schemas.state import RunState
from schemas.validation import validate_definition


@dataclass(frozen=True)
class ForkPlan:
    """What the child run starts with."""

    definition: WorkflowDefinition
    inputs: dict[str, Any]
    reused: dict[str, Any]
    rerun: list[str]


def plan_fork(
    parent: RunState, from_node: str, *, changes: dict[str, Any] | None = None, inputs: dict[str, Any] | None = None
) -> ForkPlan:
    """The child of ``parent`` that runs again from ``from_node``, with definition ``changes`` (dotted
    paths such as ``nodes.summary.model``) and input overrides applied."""
    if parent.definition is None:
        raise ForkError(f"run {parent.run_id} never started: there is nothing to fork")
    if from_node not in parent.definition.nodes:
        raise ForkError(
            f"run {parent.run_id} has no node {from_node!r}", detail={"nodes": list(parent.definition.nodes)}
        )
    definition = _changed(parent.definition, changes or {})
    if from_node not in definition.nodes:
        raise ForkError(f"the changed definition has no node {from_node!r}")
    downstream = {n for n in definition.nodes if from_node in definition.upstream(n)}
    rerun = [n for n in definition.topological_order() if n == from_node or n in downstream]
    for node_id in definition.upstream(from_node):
        node = parent.nodes.get(node_id)
        if node is None or node.status != "succeeded":
            status = node.status if node else "missing"
            raise ForkError(f"node {node_id}, upstream of {from_node}, did not succeed in the parent ({status})")
    reused = {
        node_id: node.output
        for node_id, node in parent.nodes.items()
        if node.status == "succeeded" and node_id in definition.nodes and node_id not in rerun
    }
    changed_nodes = {path.split(".")[1] for path in (changes or {}) if path.startswith("nodes.") and "." in path[6:]}
    kept = sorted(changed_nodes & set(reused))
    if kept:
        raise ForkError(
            f"--set changes {', '.join(kept)}, which the fork reuses from the parent; fork from it or from a "
            "node upstream of it"
        )
    return ForkPlan(definition=definition, inputs={**parent.inputs, **(inputs or {})}, reused=reused, rerun=rerun)


def _changed(definition: WorkflowDefinition, changes: dict[str, Any]) -> WorkflowDefinition:
    if not changes:
        return definition
    document = definition.model_dump(mode="json", exclude_defaults=True)
    for path, value in changes.items():
        parts = path.split(".")
        target: Any = document
        for part in parts[:-1]:
            if not isinstance(target, dict):
                raise ForkError(f"--set {path}: {part!r} is not inside a mapping")
            target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ForkError(f"--set {path}: the parent of {parts[-1]!r} is not a mapping")
        target[parts[-1]] = value
    try:
        return validate_definition(document)
    except DefinitionError as err:
        problems = "; ".join(f"{p.path}: {p.message}" for p in err.problems)
        raise ForkError(f"the changed definition is not valid: {problems}", detail=err.detail) from err
