"""The root of every error awe raises, and the errors of the wire contract.

Every package has its own ``exceptions.py`` whose classes derive from :class:`AweError`, so a caller can
catch one class and still read what it needs: a stable ``code``, whether retrying can help, and detail.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict


class AweError(Exception):
    """Root error: carries a stable code, whether a retry may succeed, and structured detail."""

    code: str = "awe_error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        """The error as the JSON object that crosses process boundaries."""
        return {"code": self.code, "message": self.message, "retryable": self.retryable, "detail": self.detail}


class SequenceGapError(AweError):
    """An event's seq skipped ahead: events of the run are missing. Never silently folded over."""

    code = "seq_gap"


class CommandRefusedError(AweError):
    """A signal or cancel the run would drop (no such run or node, already ended or answered), or an
    approval's answer that is not one."""

    code = "command_refused"


class Problem(BaseModel):
    """One thing wrong with a definition or with a run's inputs, and where.

    ``path`` is a JSON-ish path into the document the user wrote (``nodes.notify.retry.initial_delay``,
    ``nodes.score.depends_on[0]``, ``nodes['bad-id']``); ``""`` means the document as a whole.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class _ProblemsError(AweError):
    """An error that carries every problem found, so a user fixes them all in one round trip."""

    summary: str = "invalid"

    def __init__(self, problems: Iterable[Problem], *, message: str | None = None) -> None:
        self.problems: list[Problem] = list(problems)
        count = len(self.problems)
        head = message or f"{self.summary} ({count} problem{'' if count == 1 else 's'})"
        # str(error) lists every problem, one `path: message` per line, so a CLI can print it as it is.
        text = "\n".join([f"{head}:", *(str(problem) for problem in self.problems)]) if count else head
        super().__init__(text, detail={"problems": [problem.model_dump() for problem in self.problems]})


class DefinitionError(_ProblemsError):
    """A workflow definition is not valid: unparsable, wrong fields, unknown nodes, cycles, bad templates."""

    code = "invalid_definition"
    summary = "invalid workflow definition"


class InputError(_ProblemsError):
    """The inputs given to start a run do not match the workflow's declared inputs."""

    code = "invalid_inputs"
    summary = "invalid workflow inputs"


class TemplateError(AweError):
    """A template failed to parse or to evaluate (undefined name, type error, sandbox violation).

    Raised at run time by rendering; the orchestrator treats it as a non-retryable node failure, since
    the same template over the same recorded data fails the same way every time.
    """

    code = "template_error"

    def __init__(self, reason: str, *, template: str | None = None, path: str = "") -> None:
        self.reason = reason
        self.template = template
        self.path = path
        where = f"{path}: " if path else ""
        shown = "" if template is None else f" in template {_shorten(template)!r}"
        super().__init__(
            f"{where}{reason}{shown}",
            detail={"reason": reason, "template": template, "path": path},
        )


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ForkError(AweError):
    """A fork that cannot be made as asked (unknown node, a change to a reused node, an upstream failure)."""

    code = "invalid_fork"
