"""The limits every plugin call runs under, and how a node tightens the worker's defaults."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from streams.settings import Settings


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-call limits; each one, when reached, fails the call with the error code of the same name."""

    #: Instruction budget (wasmtime fuel), code ``fuel``.
    fuel: int
    #: Largest linear memory, enforced by the store's limiter, code ``memory``.
    memory_bytes: int
    #: Wall-clock time, enforced by epoch interruption, code ``deadline``.
    deadline_s: float
    #: Largest output, checked before it is read out of the module's memory, code ``output_size``.
    output_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The worker's defaults (``AWE_WASM_*``), which are also the most a node may ask for."""
        return cls(
            fuel=settings.wasm_fuel,
            memory_bytes=settings.wasm_memory_bytes,
            deadline_s=settings.wasm_deadline_s,
            output_bytes=settings.wasm_output_bytes,
        )

    def tighten(self, node: dict[str, Any] | None, timeout: float | None = None) -> Limits:
        """These limits lowered by a node's ``limits`` (``fuel``, ``memory``, ``deadline``, ``output``) and
        its per-attempt ``timeout``; a node can never raise a limit above the operator's."""
        node = node or {}
        deadlines = [d for d in (node.get("deadline"), timeout) if d is not None]
        return replace(
            self,
            fuel=min(self.fuel, node.get("fuel") or self.fuel),
            memory_bytes=min(self.memory_bytes, node.get("memory") or self.memory_bytes),
            deadline_s=min([self.deadline_s, *deadlines]),
            output_bytes=min(self.output_bytes, node.get("output") or self.output_bytes),
        )


def describe_bytes(size: int) -> str:
    """``64 MiB``, ``512 KiB`` or ``100 bytes``: sizes as a user wrote them, for error messages."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} bytes"
