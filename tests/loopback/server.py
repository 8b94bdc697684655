"""The part every loopback provider shares: an aiohttp server on 127.0.0.1 in a thread with its own event loop.

A subclass supplies the routes and the wire format; this module owns the lifecycle, the script and the
request record. It must never reach the network beyond loopback.
"""

from __future__ import annotations

import asyncio
import json
import threading
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from tests.loopback.script import Failure, Reply, Request, Script


class LoopbackServer:
    """Base of the provider servers: `start`/`stop` (or ``with``), `url`, and the scripting calls."""

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self._port = 0
        self._script = Script()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._startup_error: BaseException | None = None

    # -- lifecycle

    def start(self, timeout: float = 10.0) -> Self:
        """Serve in a background thread; return once the port is bound."""
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), name=type(self).__name__)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"{type(self).__name__} did not start within {timeout}s")
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving: in-flight handlers get a second to finish, then are cancelled."""
        if self._thread is None or self._loop is None or self._stopping is None:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"{type(self).__name__} did not stop within {timeout}s")
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (0 before `start`)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, no trailing slash."""
        return f"http://127.0.0.1:{self._port}"

    # -- scripting

    def plan(self, model: str, *replies: Reply) -> None:
        """Queue replies for the next requests naming ``model`` (FIFO; an empty queue answers `Reply.ok()`)."""
        self._script.plan(model, *replies)

    @property
    def requests(self) -> list[Request]:
        """Every request seen so far, oldest first."""
        return self._script.requests

    def count(self, model: str | None = None) -> int:
        """How many requests named ``model`` (all requests when None)."""
        return self._script.count(model)

    def reset(self) -> None:
        """Forget queued replies and recorded requests (for a server shared by several tests)."""
        self._script.reset()

    # -- for subclasses

    def _routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    async def _take(self, request: web.Request, model: str, body: dict[str, Any], stream: bool) -> Reply:
        """Record the request, pick its reply and wait out the reply's delay."""
        headers = {name.lower(): value for name, value in request.headers.items()}
        reply = self._script.take(Request(request.path, model, body, stream, headers))
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return reply

    @staticmethod
    async def _open_stream(request: web.Request, content_type: str, headers: dict[str, str]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": content_type, **headers})
        await response.prepare(request)
        return response

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.add_routes(self._routes())
        # handler_cancellation: a client that timed out and hung up cancels its slow handler instead of leaving
        # it asleep; access_log=None keeps per-request overhead out of benchmarks.
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self._requested_port).start()
            self._port = int(runner.addresses[0][1])
        except Exception as exc:  # handed to start(), which raises it in the caller
            self._startup_error = exc
        self._ready.set()
        try:
            if self._startup_error is None:
                await self._stopping.wait()
        finally:
            await runner.cleanup()


def error_response(failure: Failure, status: int, body: object, headers: dict[str, str]) -> web.Response:
    """A JSON error response, with ``retry-after`` when the failure scripts one."""
    if failure.retry_after is not None:
        headers = {**headers, "retry-after": f"{failure.retry_after:g}"}
    return web.json_response(body, status=status, headers=headers)


def sse(data: object, event: str | None = None) -> bytes:
    """One server-sent event: an optional ``event:`` line and a ``data:`` line of compact JSON (or a raw str)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()
