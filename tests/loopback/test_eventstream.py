"""The event-stream encoder round-trips through botocore's own decoder, checksums included."""

from __future__ import annotations

import json

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer, EventStreamMessage

from tests.loopback import eventstream


def decode(data: bytes) -> list[EventStreamMessage]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


def test_message_round_trips() -> None:
    headers = {":event-type": "contentBlockDelta", ":content-type": "application/json", "x-ünïcode": "värde"}
    payload = '{"text": "héllo ✓"}'.encode()

    [message] = decode(eventstream.encode_message(headers, payload))

    assert message.headers == headers
    assert message.payload == payload
    assert message.prelude.total_length == len(eventstream.encode_message(headers, payload))


def test_several_messages_split_at_any_byte_decode_in_order() -> None:
    data = b"".join(eventstream.event("messageStop", {"stopReason": f"r{i}"}) for i in range(3))
    buffer = EventStreamBuffer()
    messages: list[EventStreamMessage] = []
    # Feed a byte at a time: the decoder must wait for whole messages, as it does on a chunked HTTP body.
    for i in range(len(data)):
        buffer.add_data(data[i : i + 1])
        messages.extend(buffer)

    assert [json.loads(m.payload) for m in messages] == [{"stopReason": f"r{i}"} for i in range(3)]
    assert {m.headers[":message-type"] for m in messages} == {"event"}


def test_exception_message_headers() -> None:
    [message] = decode(eventstream.exception("throttlingException", "slow down"))

    assert message.headers[":message-type"] == "exception"
    assert message.headers[":exception-type"] == "throttlingException"
    assert json.loads(message.payload) == {"message": "slow down"}
    assert message.to_response_dict()["status_code"] == 400


def test_a_flipped_payload_byte_fails_the_message_checksum() -> None:
    data = bytearray(eventstream.event("messageStart", {"role": "assistant"}))
    data[-6] ^= 0xFF

    with pytest.raises(ChecksumMismatch):
        decode(bytes(data))
