"""The dependency graph of a workflow's nodes: what each node reaches, and its cycles. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def transitive_deps(graph: Mapping[str, Sequence[str]]) -> dict[str, frozenset[str]]:
    """For each node of ``graph`` (node → its direct dependencies), every node it reaches.

    Tolerates cycles (a node on a cycle reaches itself) and ignores dependencies that are not keys.
    """
    result: dict[str, frozenset[str]] = {}
    for node_id in graph:
        seen: set[str] = set()
        stack = [d for d in graph[node_id] if d in graph]
        while stack:
            dep = stack.pop()
            if dep not in seen:
                seen.add(dep)
                stack.extend(d for d in graph[dep] if d in graph and d not in seen)
        result[node_id] = frozenset(seen)
    return result


def find_cycles(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of ``graph`` (node → its direct dependencies).

    Each cycle starts and ends at the component's earliest-declared node and follows ``depends_on``
    edges (``["a", "b", "a"]``: a depends on b, b on a); it is a shortest such path, so the result is
    deterministic. Dependencies that are not keys of ``graph`` are ignored.
    """
    reach = transitive_deps(graph)
    covered: set[str] = set()
    cycles: list[list[str]] = []
    for start in graph:
        if start in covered or start not in reach[start]:
            continue
        component = {n for n in reach[start] if start in reach[n]} | {start}
        covered |= component
        # Breadth-first from `start` inside its component, back to `start`: the shortest cycle through it.
        parents: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in parents:
            next_frontier: list[str] = []
            for node in frontier:
                for dep in graph[node]:
                    if dep in component and dep not in parents:
                        parents[dep] = node
                        next_frontier.append(dep)
            frontier = next_frontier
        path = [start]
        node = parents[start]
        while node != start:
            path.append(node)
            node = parents[node]
        path.append(start)
        path.reverse()
        cycles.append(path)
    return cycles


def cycle_message(cycle: Sequence[str]) -> str:
    """The message for a cycle found by :func:`find_cycles`: ``"cycle: a -> b -> a"``."""
    return f"cycle: {' -> '.join(cycle)} (each node depends on the next)"
