"""AWS event-stream framing (``application/vnd.amazon.eventstream``), the encoding half, for the Bedrock loopback.

A message is a 12-byte prelude (total length, headers length, CRC32 of those 8 bytes), the headers, the payload,
and a CRC32 of everything before it. Only string headers (type 7) are written: all Bedrock sends.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping

_STRING_HEADER = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One framed message."""
    head = b"".join(_header(name, value) for name, value in headers.items())
    prelude = _PRELUDE.pack(_PRELUDE.size + _CRC.size + len(head) + len(payload) + _CRC.size, len(head))
    framed = prelude + _CRC.pack(zlib.crc32(prelude)) + head + payload
    return framed + _CRC.pack(zlib.crc32(framed))


def event(event_type: str, payload: Mapping[str, object]) -> bytes:
    """An ``event`` message with a JSON payload, as ConverseStream sends ``messageStart``, ``metadata``..."""
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps(payload, separators=(",", ":")).encode())


def exception(exception_type: str, message: str) -> bytes:
    """An ``exception`` message: an error raised after the stream began (``throttlingException``...)."""
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_message(headers, json.dumps({"message": message}).encode())


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", _STRING_HEADER, len(raw_value)) + raw_value
