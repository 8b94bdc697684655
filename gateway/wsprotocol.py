"""The WebSocket protocol the gateway is served with: uvicorn's sans-io one, except that the data frames
a connection is sent within one turn of the event loop go to its socket in one write.

ASGI sends one message per call, and uvicorn writes each to the socket at once: one system call per
delivery, which was most of the gateway's time when one run is watched by 10,000 clients. A connection
whose messages queue up (its sender drains its queue without yielding) now costs one call per turn.
Order is kept: anything else sent through ASGI (a close, say) first writes what is pending.
"""

from __future__ import annotations

from typing import Any

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState


class CoalescingWebSocketProtocol(WebSocketsSansIOProtocol):
    """``ws=`` for uvicorn: frames sent in one loop turn are written together."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unsent: list[bytes] = []

    async def send(self, message: ASGISendEvent) -> None:
        """Queue a data frame for this turn's write; hand anything else to uvicorn, after what is queued."""
        if message["type"] != "websocket.send" or not self.handshake_complete or self.initial_response:
            self._flush()
            await super().send(message)
            return
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if self.close_sent:
            await super().send(message)  # uvicorn's own error for a send after close
            return
        try:
            data, text = message.get("bytes"), message.get("text")
            if data is not None:
                self.conn.send_binary(data)
            elif text is not None:
                self.conn.send_text(text.encode())
        except InvalidState:
            raise ClientDisconnected() from None
        if not self._unsent:
            self.loop.call_soon(self._flush)
        self._unsent.extend(self.conn.data_to_send())

    def _flush(self) -> None:
        if self._unsent:
            unsent, self._unsent = self._unsent, []
            if not self.transport.is_closing():
                self.transport.write(b"".join(unsent))
