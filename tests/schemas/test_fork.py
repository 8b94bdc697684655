"""Planning a fork from a recorded run: what is reused, what runs again, and what is refused."""

from __future__ import annotations

import pytest

from schemas.exceptions import ForkError
from schemas.fork import plan_fork
from schemas.state import NodeState, RunState
from schemas.validation import validate_definition

DEFINITION = validate_definition(
    {
        "name": "wf",
        "inputs": {"q": {"type": "string"}},
        "nodes": {
            "a": {"kind": "transform", "output": 1},
            "b": {
                "kind": "ai",
                "provider": "echo",
                "model": "m",
                "prompt": "{{ nodes.a.output }}",
                "depends_on": ["a"],
            },
            "c": {"kind": "transform", "output": 3, "depends_on": ["b"]},
            "d": {"kind": "transform", "output": 4},
        },
    }
)


def _parent(**statuses: str) -> RunState:
    nodes = {n: NodeState(status=statuses.get(n, "succeeded"), attempts=1, output=f"out-{n}") for n in DEFINITION.nodes}  # type: ignore[arg-type]
    return RunState(run_id="p", status="succeeded", definition=DEFINITION, version=1, inputs={"q": "x"}, nodes=nodes)


def test_everything_not_downstream_is_reused() -> None:
    plan = plan_fork(_parent(), "b", changes={"nodes.b.model": "other"}, inputs={"q": "y"})
    assert plan.rerun == ["b", "c"]
    assert plan.reused == {"a": "out-a", "d": "out-d"}
    assert plan.inputs == {"q": "y"}
    assert plan.definition.nodes["b"].model == "other"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("parent", "node", "changes", "fragment"),
    [
        (_parent(), "zz", {}, "has no node 'zz'"),
        (_parent(a="failed"), "b", {}, "node a, upstream of b, did not succeed in the parent (failed)"),
        (_parent(), "b", {"nodes.a.output": 5}, "--set changes a, which the fork reuses"),
        (_parent(), "b", {"nodes.b.provider": "nope"}, "the changed definition is not valid"),
    ],
)
def test_forks_that_cannot_be_made_say_why(
    parent: RunState, node: str, changes: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ForkError) as caught:
        plan_fork(parent, node, changes=changes)
    assert fragment in caught.value.message and caught.value.code == "invalid_fork"
