"""Showing a run's progress live: one line per event, as it is appended to the log."""

from __future__ import annotations

from rich.console import Console

from schemas.envelope import Envelope
from schemas.state import RunState

_STYLES = {
    "RunSucceeded": "bold green",
    "NodeSucceeded": "green",
    "RunFailed": "bold red",
    "NodeFailed": "red",
    "RunRejected": "bold red",
    "RunCancelled": "yellow",
    "NodeRetrying": "yellow",
    "NodeSkipped": "dim",
    "RunWaiting": "cyan",
    "AICallRecorded": "magenta",
}


class EventPrinter:
    """Prints each event of a run as a short, coloured line."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def on_event(self, envelope: Envelope, state: RunState) -> None:
        """Print one event (the state after it is there for summaries)."""
        p = envelope.payload
        node = p.get("node_id")
        detail = ""
        if envelope.type == "NodeRetrying":
            detail = f"attempt {p['attempt']} failed ({p['error']['code']}), retrying"
        elif envelope.type in ("NodeFailed", "RunFailed"):
            detail = f"{p['error']['code']}: {p['error']['message']}"
        elif envelope.type == "NodeSkipped":
            detail = p["reason"]
        elif envelope.type == "RunWaiting":
            detail = f"waiting for {'a signal' if p['reason'] == 'approval' else 'a timer'}"
        elif envelope.type == "NodeScheduled":
            detail = f"{p['kind']} attempt {p['attempt']}"
        elif envelope.type == "RunCancelled":
            by = f" by {envelope.principal}" if envelope.principal else ""
            detail = (p.get("reason") or "") + by
        elif envelope.type == "RunRejected":
            detail = f"{p['code']}: {p['message']}"
        elif envelope.type == "RunStarted":
            detail = f"{p['workflow']} v{p['version']}"
        elif envelope.type == "AICallRecorded":
            detail = _call_summary(p)
        style = _STYLES.get(envelope.type, "")
        where = f" [bold]{node}[/bold]" if node else ""
        self.console.print(
            f"{envelope.seq:>4} [{style}]{envelope.type}[/{style}]{where} {detail}".rstrip()
            if style
            else f"{envelope.seq:>4} {envelope.type}{where} {detail}".rstrip(),
            highlight=False,
        )


def _call_summary(call: dict[str, object]) -> str:
    usage = call.get("usage")
    tokens = f"{usage['input_tokens']} in / {usage['output_tokens']} out tokens" if isinstance(usage, dict) else ""
    cost = call.get("cost_usd")
    price = f"${cost:.6f}" if isinstance(cost, int | float) else "cost unknown"
    simulated = ", simulated" if call.get("simulated") else ""
    answer = str(call.get("answer", ""))
    preview = answer if len(answer) <= 70 else answer[:67] + "..."
    return f"{call.get('provider')} {call.get('model')}: {tokens}, {price}{simulated}: {preview!r}"
