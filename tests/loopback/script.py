"""What the loopback providers answer: scripted replies per model, and the record of the requests they saw.

Provider-neutral: nothing here knows a wire format. Each server turns a `Reply` into its own protocol.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

# Generic finish names each server translates to its provider's word; any other value is sent as is.
STOP = "stop"
LENGTH = "length"
REFUSAL = "refusal"


@dataclass(frozen=True)
class Failure:
    """An error answer: an HTTP status with the provider's error body, or an in-stream error after some deltas."""

    status: int
    message: str
    retry_after: float | None = None
    error_type: str | None = None
    after_deltas: int | None = None

    def is_http(self, stream: bool) -> bool:
        """Whether this failure is an HTTP error response, rather than an error inside a stream after deltas."""
        return not (stream and self.after_deltas is not None)


@dataclass(frozen=True)
class Answer:
    """A success answer resolved against one request: the text and the usage figures to report."""

    text: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    finish: str
    chunk_delay: float

    @property
    def pieces(self) -> list[str]:
        """The text as stream deltas, one word with its trailing whitespace each; they join back to the text."""
        return [piece for piece in re.split(r"(?<=\s)(?=\S)", self.text) if piece]


@dataclass(frozen=True)
class Reply:
    """One scripted answer to one request. Build it with `ok`, `error`, `slow` or `refusal`."""

    text: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int = 0
    finish: str = STOP
    delay: float = 0.0
    chunk_delay: float = 0.0
    failure: Failure | None = None

    @classmethod
    def ok(
        cls,
        text: str | None = None,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_tokens: int = 0,
        finish: str = STOP,
        delay: float = 0.0,
        chunk_delay: float = 0.0,
    ) -> Reply:
        """A success. ``text=None`` answers ``"echo: " + <last user message>``; token counts default to word
        counts of the prompt and the answer. ``finish`` is ``"stop"``, ``"length"`` or ``"refusal"`` (translated
        per provider) or a provider's own stop reason. ``delay`` sleeps before the answer starts,
        ``chunk_delay`` between stream deltas. Usage figures are reported as given, in each provider's fields."""
        return cls(
            text=text,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_tokens=cached_tokens,
            finish=finish,
            delay=delay,
            chunk_delay=chunk_delay,
        )

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "scripted error",
        *,
        retry_after: float | None = None,
        error_type: str | None = None,
        after_deltas: int | None = None,
    ) -> Reply:
        """An error in the provider's format. ``error_type`` overrides the name the status maps to (e.g.
        ``"ModelErrorException"``). With ``after_deltas`` a streaming request gets that many deltas of the default
        answer and then the error inside the stream; a non-streaming request gets the HTTP error."""
        return cls(failure=Failure(status, message, retry_after, error_type, after_deltas))

    @classmethod
    def slow(cls, seconds: float, text: str | None = None) -> Reply:
        """A success that starts only after ``seconds``: for client timeouts."""
        return cls.ok(text, delay=seconds)

    @classmethod
    def refusal(cls, text: str = "") -> Reply:
        """The model declines: OpenAI ``content_filter``, Anthropic ``refusal``, Bedrock ``content_filtered``."""
        return cls.ok(text, finish=REFUSAL)

    def answer(self, prompt: str, last_user: str) -> Answer:
        """The success answer to a request whose prompt text and last user message are given."""
        text = f"echo: {last_user}" if self.text is None else self.text
        return Answer(
            text=text,
            input_tokens=_words(prompt) if self.input_tokens is None else self.input_tokens,
            output_tokens=_words(text) if self.output_tokens is None else self.output_tokens,
            cached_tokens=self.cached_tokens,
            finish=self.finish,
            chunk_delay=self.chunk_delay,
        )


@dataclass(frozen=True)
class Request:
    """One request a loopback server received. ``headers`` have lower-case names."""

    path: str
    model: str
    body: dict[str, Any]
    stream: bool
    headers: dict[str, str]


class Script:
    """Replies queued per model (FIFO, then the default success) and every request seen; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: dict[str, deque[Reply]] = {}
        self._requests: list[Request] = []

    def plan(self, model: str, *replies: Reply) -> None:
        """Queue replies for the next requests naming ``model``."""
        with self._lock:
            self._plans.setdefault(model, deque()).extend(replies)

    def take(self, request: Request) -> Reply:
        """Record ``request`` and return the reply it gets."""
        with self._lock:
            self._requests.append(request)
            queue = self._plans.get(request.model)
            return queue.popleft() if queue else Reply.ok()

    @property
    def requests(self) -> list[Request]:
        """The requests seen so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def count(self, model: str | None = None) -> int:
        """How many requests named ``model`` (all requests when None)."""
        with self._lock:
            return sum(1 for r in self._requests if model is None or r.model == model)

    def reset(self) -> None:
        """Forget queued replies and recorded requests."""
        with self._lock:
            self._plans.clear()
            self._requests.clear()


def conversation(messages: object, system: object = None) -> tuple[str, str]:
    """All prompt text and the last user message's text, from any of the three providers' message lists.

    Content may be a string or a list of blocks with ``text`` (OpenAI parts, Anthropic blocks, Bedrock content).
    """
    turns = messages if isinstance(messages, list) else []
    texts = [_text(system)] + [_text(m.get("content")) for m in turns if isinstance(m, dict)]
    users = [_text(m.get("content")) for m in turns if isinstance(m, dict) and m.get("role") == "user"]
    return " ".join(t for t in texts if t), users[-1] if users else ""


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(b["text"]) for b in content if isinstance(b, dict) and "text" in b)
    return ""


def _words(text: str) -> int:
    return len(text.split())
