"""The gateway on a real broker with a real worker: REST flows, idempotency, errors, auth, tenants kept
apart on every route and every subscription, and the WebSocket protocol through a real client over a real
socket (live events, resume with no gap and no duplicate, slow consumers, heartbeats)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from schemas.state import run_view
from streams.store import EventStore
from tests.gateway.server import GatewayServer, gateway_settings
from tests.harness import REPO, Engine, settings_env, wait_until

KEYS = {
    "acme-op": {"tenant": "acme", "role": "operator"},
    "acme-view": {"tenant": "acme", "role": "viewer"},
    "globex-op": {"tenant": "globex", "role": "operator"},
}
JWT_SECRET = "test-secret-of-thirty-two-bytes!!"


def _workflow(name: str) -> str:
    return f"""
name: {name}
inputs:
  who: {{type: string, required: true}}
  n: {{type: integer, default: 1}}
nodes:
  greet:
    kind: transform
    output: "hi {{{{ inputs.who }}}}"
  approve:
    kind: approval
    timeout: 1h
    depends_on: [greet]
outputs:
  greeting: "{{{{ nodes.greet.output }}}}"
"""


@pytest.fixture(scope="module")
def gateway(engine: Engine) -> Iterator[GatewayServer]:
    settings = gateway_settings(engine.settings, api_keys=json.dumps(KEYS), jwt_secret=JWT_SECRET, jwt_audience="awe")
    server = GatewayServer(settings, require_auth=True)
    server.wait_ready()
    yield server
    server.close()


@pytest.fixture(scope="module")
def names(gateway: GatewayServer) -> dict[str, str]:
    """The same workflow name registered by both tenants, with different definitions."""
    name = f"greet-{uuid.uuid4().hex[:6]}"
    with gateway.client("acme-op") as acme, gateway.client("globex-op") as globex:
        made = acme.post("/v1/workflows", content=_workflow(name), headers={"content-type": "application/yaml"})
        assert made.status_code == 201, made.text
        assert made.json()["version"] == 1
        other = orjson.loads(orjson.dumps({"name": name, "nodes": {"x": {"kind": "transform", "output": 1}}}))
        assert globex.post("/v1/workflows", json=other).status_code == 201
        again = acme.post("/v1/workflows", content=_workflow(name), headers={"content-type": "application/yaml"})
        assert again.status_code == 200 and again.json()["created"] is False
    return {"acme": name}


def _start(client: httpx.Client, workflow: str, **inputs: Any) -> str:
    answer = client.post("/v1/runs", json={"workflow": workflow, "inputs": {"who": "Ada", **inputs}})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["run_id"])


def _until_status(client: httpx.Client, run_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        nonlocal seen
        answer = client.get(f"/v1/runs/{run_id}")
        seen = answer.json() if answer.status_code == 200 else {}
        return seen.get("status") == status

    wait_until(reached, timeout)
    return seen


def test_a_run_started_watched_signalled_and_read_back_over_rest(
    gateway: GatewayServer, engine: Engine, names: dict[str, str]
) -> None:
    with gateway.client("acme-op") as acme:
        listed = acme.get("/v1/workflows").json()["workflows"]
        assert [w["name"] for w in listed] == [names["acme"]]
        assert acme.get(f"/v1/workflows/{names['acme']}/versions/1").json()["definition"]["inputs"]["n"]
        run_id = _start(acme, names["acme"])
        waiting = _until_status(acme, run_id, "waiting")
        assert waiting["nodes"]["approve"]["status"] == "waiting"
        unknown = acme.post(f"/v1/runs/{run_id}/signals/nope", json={"approve": True})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_node"
        vague = acme.post(f"/v1/runs/{run_id}/signals/approve", json={"approve": "yes"})
        assert vague.status_code == 422 and vague.json()["error"]["code"] == "invalid_answer"
        assert acme.post(f"/v1/runs/{run_id}/signals/approve", json={"approve": True}).status_code == 202
        done = _until_status(acme, run_id, "succeeded")
        assert done["outputs"] == {"greeting": "hi Ada"}
        late = acme.post(f"/v1/runs/{run_id}/signals/approve", json={"approve": False})
        assert late.status_code == 409 and late.json()["error"]["code"] == "run_ended"
        too_late = acme.post(f"/v1/runs/{run_id}/cancel", json={"reason": "late"})
        assert too_late.status_code == 409 and too_late.json()["error"]["code"] == "run_ended"
        # The same object as `awe run --json`: the fold of the run's log.
        final = EventStore(engine.settings).state_at(run_id)
        assert done == {**orjson.loads(orjson.dumps(run_view(final))), "seq": final.seq}

        events = acme.get(f"/v1/runs/{run_id}/events", params={"after_seq": 2}).json()
        seqs = [e["seq"] for e in events["events"]]
        assert seqs[0] == 3 and seqs == list(range(3, events["last_seq"] + 1))
        assert {e["tenant_id"] for e in events["events"]} == {"acme"}
        assert {e["principal"] for e in events["events"]} >= {"key:" + _digest8("acme-op")}

        at_1 = acme.get(f"/v1/runs/{run_id}/state", params={"at_seq": 1}).json()
        assert at_1["seq"] == 1 and at_1["status"] == "running"
        started = events["events"][0]["time"]
        assert acme.get(f"/v1/runs/{run_id}/state", params={"at_time": started}).json()["seq"] >= 3

        runs = acme.get("/v1/runs", params={"workflow": names["acme"], "status": "succeeded"}).json()["runs"]
        assert run_id in [r["run_id"] for r in runs]
        cancelled = _start(acme, names["acme"])
        _until_status(acme, cancelled, "waiting")
        assert acme.post(f"/v1/runs/{cancelled}/cancel", json={"reason": "test"}).status_code == 202
        assert _until_status(acme, cancelled, "cancelled")["nodes"]["approve"]["status"] == "cancelled"


def _digest8(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()[:8]


def test_idempotency_keys_are_per_tenant_and_refuse_another_body(gateway: GatewayServer, names: dict[str, str]) -> None:
    key = {"Idempotency-Key": f"order-{uuid.uuid4().hex}"}
    body = {"workflow": names["acme"], "inputs": {"who": "Bo"}}
    with gateway.client("acme-op") as acme, gateway.client("globex-op") as globex:
        first = acme.post("/v1/runs", json=body, headers=key)
        assert first.status_code == 202
        run_id = first.json()["run_id"]
        again = acme.post("/v1/runs", json=body, headers=key)
        assert again.status_code == 202 and again.json()["run_id"] == run_id
        assert again.headers["idempotent-replayed"] == "true"
        conflict = acme.post("/v1/runs", json={**body, "inputs": {"who": "Cy"}}, headers=key)
        assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "idempotency_conflict"
        # Once the RunStarted is read, the check holds in any gateway process: ask a second one.
        _until_status(acme, run_id, "waiting")
        second = GatewayServer(gateway.settings)
        try:
            second.wait_ready()
            with second.client("acme-op") as other:
                assert other.post("/v1/runs", json=body, headers=key).json()["run_id"] == run_id
                assert other.post("/v1/runs", json={**body, "inputs": {"who": "Cy"}}, headers=key).status_code == 409
        finally:
            second.close()
        # The same key in another tenant is another run.
        theirs = globex.post("/v1/runs", json={"workflow": names["acme"], "inputs": {}}, headers=key)
        assert theirs.status_code == 202 and theirs.json()["run_id"] != run_id


def test_bad_input_is_a_clear_4xx_with_a_stable_code(gateway: GatewayServer, names: dict[str, str]) -> None:
    with gateway.client("acme-op") as acme:
        bad = acme.post("/v1/runs", json={"workflow": names["acme"], "inputs": {"who": 3, "extra": 1}})
        assert bad.status_code == 422
        error = bad.json()["error"]
        assert error["code"] == "invalid_inputs"
        assert {p["path"] for p in error["detail"]["problems"]} == {"inputs.who", "inputs.extra"}
        not_json = acme.post("/v1/runs", content=b"{nope", headers={"content-type": "application/json"})
        assert not_json.status_code == 422 and not_json.json()["error"]["code"] == "invalid_json"
        schema = acme.post("/v1/runs", json={"workflow": 5, "inputs": []})
        assert schema.status_code == 422
        assert {p["path"] for p in schema.json()["error"]["detail"]["problems"]} == {"workflow", "inputs"}
        huge = acme.post("/v1/runs", content=b"x" * (gateway.settings.gateway_max_body_bytes + 1))
        assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
        unknown = acme.post("/v1/runs", json={"workflow": "nope", "inputs": {}})
        assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_workflow"
        assert acme.get("/v1/runs/nope").status_code == 404
        assert acme.get("/v1/runs/nope").json()["error"]["code"] == "unknown_run"
        assert acme.get("/v1/runs", params={"limit": "x"}).status_code == 422
        bad_def = acme.post(
            "/v1/workflows", content=b"name: x\nnodes: {a: {kind: nope}}", headers={"content-type": "application/yaml"}
        )
        assert bad_def.status_code == 422 and bad_def.json()["error"]["code"] == "invalid_definition"
        assert acme.get("/v1/nowhere").json()["error"]["code"] == "not_found"


def _requests_counted(server: GatewayServer, route: str, method: str, status: int) -> float:
    wanted = f'awe_gateway_requests_total{{method="{method}",route="{route}",status="{status}"}}'
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(wanted):
            return float(line.split()[-1])
    return 0.0


def test_a_start_answers_and_is_counted_as_every_route(gateway: GatewayServer, names: dict[str, str]) -> None:
    before = {s: _requests_counted(gateway, "/v1/runs", "POST", s) for s in (202, 401, 413, 422)}
    with gateway.client("acme-op") as acme:
        started = acme.post("/v1/runs", json={"workflow": names["acme"], "inputs": {"who": "Di"}})
        assert started.status_code == 202 and started.headers["content-type"] == "application/json"
        assert started.headers["location"] == f"/v1/runs/{started.json()['run_id']}"
        assert acme.get(started.headers["location"]).status_code == 200

        # A chunked body declares no length: the limit is enforced while it streams in.
        def chunks() -> Iterator[bytes]:
            for _ in range(gateway.settings.gateway_max_body_bytes // 1024 + 2):
                yield b" " * 1024

        streamed = acme.post("/v1/runs", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "payload_too_large"
        assert acme.post("/v1/runs", json={"workflow": names["acme"], "inputs": {}}).status_code == 422
    with httpx.Client(base_url=gateway.url) as anonymous:
        refused = anonymous.post("/v1/runs", json={"workflow": names["acme"], "inputs": {"who": "x"}})
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    after = {s: _requests_counted(gateway, "/v1/runs", "POST", s) for s in before}
    assert {s: after[s] - before[s] for s in before} == {202: 1, 401: 1, 413: 1, 422: 1}


def test_credentials_and_roles(gateway: GatewayServer, names: dict[str, str]) -> None:
    with httpx.Client(base_url=gateway.url) as anonymous:
        assert anonymous.get("/v1/runs").status_code == 401
        assert anonymous.get("/v1/runs", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert anonymous.get("/v1/runs", headers={"authorization": "Basic abc"}).status_code == 401
        for open_path in ("/healthz", "/readyz", "/openapi.json", "/metrics", "/docs", "/", "/ui/app.js"):
            assert anonymous.get(open_path).status_code == 200, open_path
    with gateway.client("acme-view") as viewer:
        assert viewer.get("/v1/runs").status_code == 200
        refused = viewer.post("/v1/runs", json={"workflow": names["acme"], "inputs": {"who": "x"}})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert viewer.post("/v1/workflows", json={"name": "x", "nodes": {}}).status_code == 403
    claims = {"sub": "alice", "tenant": "acme", "role": "operator", "aud": "awe", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    with gateway.client(token) as alice:
        run_id = _start(alice, names["acme"])
        assert alice.get("/v1/runs").status_code == 200
    expired = jwt.encode({**claims, "exp": int(time.time()) - 10}, JWT_SECRET, algorithm="HS256")
    forged = jwt.encode(claims, "another-secret-of-thirty-two-byte", algorithm="HS256")
    wrong_aud = jwt.encode({**claims, "aud": "other"}, JWT_SECRET, algorithm="HS256")
    for bad in (expired, forged, wrong_aud):
        with gateway.client(bad) as client:
            assert client.get("/v1/runs").status_code == 401
    with gateway.client("acme-op") as acme:
        _until_status(acme, run_id, "waiting")
        events = acme.get(f"/v1/runs/{run_id}/events").json()["events"]
        assert events[0]["principal"] == "alice"


def test_another_tenants_run_is_not_found_by_any_route(gateway: GatewayServer, names: dict[str, str]) -> None:
    with gateway.client("acme-op") as acme, gateway.client("globex-op") as globex:
        run_id = _start(acme, names["acme"])
        _until_status(acme, run_id, "waiting")
        for path in (f"/v1/runs/{run_id}", f"/v1/runs/{run_id}/events", f"/v1/runs/{run_id}/state"):
            answer = globex.get(path)
            assert answer.status_code == 404, path
            assert run_id not in answer.text.replace(f"no run {run_id}", "")
        assert globex.post(f"/v1/runs/{run_id}/signals/approve", json={"approve": True}).status_code == 404
        assert globex.post(f"/v1/runs/{run_id}/cancel").status_code == 404
        assert globex.post(f"/v1/runs/{run_id}/replay").status_code == 404
        assert run_id not in globex.get("/v1/runs").text
        # Their workflow of the same name is their own definition.
        theirs = globex.get(f"/v1/workflows/{names['acme']}").json()
        assert list(theirs["definition"]["nodes"]) == ["x"]
        assert acme.get(f"/v1/runs/{run_id}").json()["status"] == "waiting"
        acme.post(f"/v1/runs/{run_id}/cancel")


# --- WebSockets -------------------------------------------------------------------------------------------


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _next(ws: Any, kind: str, within: float = 30, raising: bool = True) -> dict[str, Any]:
    """The next message of a type, answering pings on the way (and failing on errors, when ``raising``)."""
    deadline = time.monotonic() + within
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
        if message["type"] == "ping":
            await ws.send(json.dumps({"op": "pong"}))
            continue
        if message["type"] == kind:
            return message
        if message["type"] == "error" and raising:
            raise AssertionError(message)


async def _events_until(ws: Any, run_id: str, last_type: str) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while True:
        message = await _next(ws, "event")
        event = message["event"]
        if event["run_id"] != run_id:
            continue  # another run of the same workflow
        got.append(event)
        if event["type"] == last_type:
            return got


def test_live_events_and_a_resume_without_gap_or_duplicate(gateway: GatewayServer, names: dict[str, str]) -> None:
    async def scenario() -> None:
        with gateway.client("acme-op") as acme:
            async with websockets.connect(gateway.ws_url, additional_headers=_auth("acme-op")) as ws:
                await ws.send(json.dumps({"op": "subscribe", "workflow": names["acme"]}))
                assert (await _next(ws, "subscribed"))["workflow"] == names["acme"]
                run_id = _start(acme, names["acme"])
                first = await _events_until(ws, run_id, "RunWaiting")
                assert [e["seq"] for e in first] == list(range(1, len(first) + 1))
            # Disconnected: the run moves on meanwhile.
            acme.post(f"/v1/runs/{run_id}/signals/approve", json={"approve": True})
            _until_status(acme, run_id, "succeeded")
        # A browser-style token parameter this time; resume from the seq after the last one seen.
        resume_at = first[-1]["seq"] + 1
        async with websockets.connect(f"{gateway.ws_url}?token=acme-op") as ws:
            await ws.send(json.dumps({"op": "subscribe", "run_id": run_id, "from_seq": resume_at}))
            await _next(ws, "subscribed")
            rest = await _events_until(ws, run_id, "RunSucceeded")
        assert [e["seq"] for e in rest] == list(range(resume_at, resume_at + len(rest)))

    asyncio.run(scenario())


def test_resume_while_the_run_is_live_sends_each_event_once(gateway: GatewayServer, names: dict[str, str]) -> None:
    async def scenario() -> None:
        with gateway.client("acme-op") as acme:
            run_id = _start(acme, names["acme"])
            _until_status(acme, run_id, "waiting")
            async with websockets.connect(gateway.ws_url, additional_headers=_auth("acme-op")) as ws:
                await ws.send(json.dumps({"op": "subscribe", "run_id": run_id, "from_seq": 1}))
                await _next(ws, "subscribed")
                # The signal races the history read: events must still come once each, in order.
                acme.post(f"/v1/runs/{run_id}/signals/approve", json={"approve": True})
                got = await _events_until(ws, run_id, "RunSucceeded")
        assert [e["seq"] for e in got] == list(range(1, len(got) + 1))

    asyncio.run(scenario())


def test_subscriptions_never_cross_tenants(gateway: GatewayServer, names: dict[str, str]) -> None:
    async def scenario() -> None:
        with gateway.client("acme-op") as acme:
            async with websockets.connect(gateway.ws_url, additional_headers=_auth("globex-op")) as spy:
                run_id = _start(acme, names["acme"])
                _until_status(acme, run_id, "waiting")
                for subscribe in (
                    {"run_id": run_id, "from_seq": 1},
                    {"workflow": names["acme"], "from_offsets": {str(p): 0 for p in range(3)}},
                    {"all": True, "from_offsets": {str(p): 0 for p in range(3)}, "tokens": True},
                ):
                    await spy.send(json.dumps({"op": "subscribe", **subscribe}))
                    await _next(spy, "subscribed")
                acme.post(f"/v1/runs/{run_id}/cancel")
                _until_status(acme, run_id, "cancelled")
                seen = await _events_for(spy, 2.0)
                # Globex's own runs (of its own workflow of that name) do show; acme's never.
                assert {e["tenant_id"] for e in seen} <= {"globex"}
                assert run_id not in {e["run_id"] for e in seen}

    asyncio.run(scenario())


def test_websocket_credentials_are_checked_at_the_upgrade(gateway: GatewayServer) -> None:
    async def scenario() -> None:
        for headers in ({}, _auth("wrong")):
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(gateway.ws_url, additional_headers=headers):
                    pass
            assert refused.value.response.status_code == 401
        async with websockets.connect(gateway.ws_url, additional_headers=_auth("acme-view")) as ws:
            await ws.send("not json")
            assert (await _next_error(ws))["code"] == "invalid_json"
            await ws.send(json.dumps({"op": "subscribe", "run_id": "a", "all": True}))
            assert (await _next_error(ws))["code"] == "invalid_subscription"
            await ws.send(json.dumps({"op": "unsubscribe", "all": True}))
            assert (await _next_error(ws))["code"] == "not_subscribed"
            await ws.send("x" * (gateway.settings.ws_max_message_bytes + 1))
            assert (await _next_error(ws))["code"] == "message_too_large"
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

    asyncio.run(scenario())


async def _events_for(ws: Any, seconds: float) -> list[dict[str, Any]]:
    """Every event that arrives within ``seconds``."""
    seen: list[dict[str, Any]] = []
    with contextlib.suppress(TimeoutError):
        while True:
            seen.append((await _next(ws, "event", seconds))["event"])
    return seen


async def _next_error(ws: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] == "error":
            return message


@pytest.fixture(scope="module")
def tight(engine: Engine) -> Iterator[GatewayServer]:
    """An open gateway (tenant default) with a tiny send queue, a fast heartbeat and tight rate limits, and
    without the engine's replayer, as an app embedding ``create_app`` alone would be."""
    settings = gateway_settings(
        engine.settings,
        ws_send_queue=3,
        ws_ping_interval_s=0.3,
        ws_rate_limit=1.0,
        ws_rate_burst=5,
        gateway_rate_limit=1.0,
        gateway_rate_burst=3,
    )
    server = GatewayServer(settings, replayer=None)
    server.wait_ready()
    yield server
    server.close()


def _closes(server: GatewayServer, reason: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(f'awe_gateway_ws_closes_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_a_slow_consumer_is_closed_and_never_stalls_the_others(engine: Engine) -> None:
    # A heartbeat slower than the test, so the silent client is closed for its queue and nothing else.
    tight = GatewayServer(gateway_settings(engine.settings, ws_send_queue=3, ws_ping_interval_s=60.0))
    tight.wait_ready()
    many, one = f"many-{uuid.uuid4().hex[:6]}", f"one-{uuid.uuid4().hex[:6]}"
    engine.apply({"name": many, "nodes": {f"n{i}": {"kind": "transform", "output": i} for i in range(20)}})
    engine.apply({"name": one, "nodes": {"n": {"kind": "transform", "output": 1}}})

    async def scenario() -> None:
        # This client reads nothing: its socket fills, then its queue, and the gateway closes it.
        slow = await websockets.connect(tight.ws_url, max_queue=1)
        await slow.send(json.dumps({"op": "subscribe", "workflow": many}))
        async with websockets.connect(tight.ws_url) as fast:
            await fast.send(json.dumps({"op": "subscribe", "workflow": one}))
            await _next(fast, "subscribed")
            # Runs are started straight on Kafka here: the tight gateway's REST rate limit is for another test.
            for _ in range(10):
                await asyncio.to_thread(engine.start, many)
            watched = (await asyncio.to_thread(engine.start, one))[0]
            got = await _events_until(fast, watched, "RunSucceeded")
            assert [e["seq"] for e in got] == list(range(1, len(got) + 1))
        wait_until(lambda: _closes(tight, "slow_consumer") >= 1, 30)
        assert await _close_of(slow) == (4008, "slow_consumer")

    try:
        asyncio.run(scenario())
    finally:
        tight.close()


def test_a_client_that_misses_two_pongs_is_closed(tight: GatewayServer) -> None:
    async def answer_pings(ws: Any, pings: list[float]) -> None:
        while True:
            if json.loads(await ws.recv())["type"] == "ping":
                pings.append(time.monotonic())
                await ws.send(json.dumps({"op": "pong"}))

    async def scenario() -> None:
        silent = await websockets.connect(tight.ws_url)
        async with websockets.connect(tight.ws_url) as alive:
            pings: list[float] = []
            answering = asyncio.get_running_loop().create_task(answer_pings(alive, pings))
            started = time.monotonic()
            assert await _close_of(silent) == (4000, "heartbeat_timeout")
            assert time.monotonic() - started < 5
            await asyncio.sleep(1.0)
            # The one that answers is still there, pinged all along.
            assert not answering.done() and len(pings) >= 4
            answering.cancel()

    asyncio.run(scenario())


async def _close_of(ws: Any) -> tuple[int, str]:
    """Read (and drop) messages until the server closes; its close code and reason."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    except ConnectionClosed as closed:
        received = closed.rcvd
    assert received is not None
    return received.code, received.reason


async def _next_of(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] == kind:
            return message


def test_rate_limits_answer_429_and_an_error_message(tight: GatewayServer) -> None:
    with tight.client() as client:
        answers = [client.get("/v1/workflows") for _ in range(6)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].json()["error"]["code"] == "rate_limited"
    assert int(limited[0].headers["retry-after"]) >= 1

    async def scenario() -> None:
        async with websockets.connect(tight.ws_url) as ws:
            codes = []
            # One at a time (the tight send queue holds 3), answering pings: pongs are never rate limited.
            for _ in range(10):
                await ws.send(json.dumps({"op": "unsubscribe", "all": True}))
                codes.append((await _next(ws, "error", raising=False))["code"])
            assert "rate_limited" in codes and "not_subscribed" in codes

    asyncio.run(scenario())


def test_the_cli_through_the_gateway(gateway: GatewayServer, engine: Engine) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    with gateway.client("acme-op") as acme:
        acme.post("/v1/workflows", json={"name": name, "nodes": {"a": {"kind": "transform", "output": 7}}})

    def awe(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**settings_env(engine.settings), "AWE_API_KEY": "acme-op"}
        return subprocess.run(
            [sys.executable, "-m", "awe", *args, "--gateway", gateway.url],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )

    ran = awe("run", name, "--wait", "--json", "--timeout", "30")
    assert ran.returncode == 0, ran.stderr
    view = json.loads(ran.stdout.splitlines()[-1])
    assert view["status"] == "succeeded" and view["nodes"]["a"]["output"] == 7
    events = awe("events", view["run_id"])
    lines = [json.loads(line) for line in events.stdout.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["type"] == "RunSucceeded"
    unknown = awe("cancel", "no-such-run")
    assert unknown.returncode == 1 and "unknown_run" in unknown.stderr
    assert awe("run", name, "--input", "x=1").returncode == 1  # an unknown input: 422 from the gateway


def test_a_fork_over_rest_reuses_the_parents_results_and_another_tenant_cannot_fork(
    gateway: GatewayServer, names: dict[str, str]
) -> None:
    with gateway.client("acme-op") as acme, gateway.client("globex-op") as globex, gateway.client("acme-view") as view:
        parent = _start(acme, names["acme"], who="Grace")
        _until_status(acme, parent, "waiting")
        assert acme.post(f"/v1/runs/{parent}/signals/approve", json={"approve": True}).status_code == 202
        _until_status(acme, parent, "succeeded")

        body = {"from_node": "approve", "inputs": {"n": 2}}
        assert globex.post(f"/v1/runs/{parent}/fork", json=body).status_code == 404
        assert view.post(f"/v1/runs/{parent}/fork", json=body).status_code == 403
        refused = acme.post(f"/v1/runs/{parent}/fork", json={"from_node": "nope"})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_fork"
        forked = acme.post(f"/v1/runs/{parent}/fork", json=body)
        assert forked.status_code == 202, forked.text
        answer = forked.json()
        assert (answer["parent_run_id"], answer["reused"], answer["rerun"]) == (parent, ["greet"], ["approve"])
        child = answer["run_id"]
        waiting = _until_status(acme, child, "waiting")
        assert waiting["nodes"]["greet"] == {"status": "succeeded", "output": "hi Grace", "attempts": 0, "error": None}
        assert acme.post(f"/v1/runs/{child}/signals/approve", json={"approve": True}).status_code == 202
        assert _until_status(acme, child, "succeeded")["outputs"] == {"greeting": "hi Grace"}
        started = acme.get(f"/v1/runs/{child}/events").json()["events"][0]
        assert started["payload"]["parent_run_id"] == parent and started["payload"]["inputs"]["n"] == 2


def test_a_replay_over_rest_is_the_report_of_awe_replay(gateway: GatewayServer, names: dict[str, str]) -> None:
    with gateway.client("acme-view") as view, gateway.client("acme-op") as acme:
        run_id = _start(acme, names["acme"], who="Ada")
        _until_status(acme, run_id, "waiting")
        assert acme.post(f"/v1/runs/{run_id}/signals/approve", json={"approve": True}).status_code == 202
        _until_status(acme, run_id, "succeeded")
        events = acme.get(f"/v1/runs/{run_id}/events").json()["events"]
        # Reading a run again changes nothing, so a viewer may replay.
        answer = view.post(f"/v1/runs/{run_id}/replay")
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert report["run_id"] == run_id and report["identical"] is True and report["differences"] == []
        assert report["events"] == len(events) and report["steps"] == 2  # the start, then the approval
        assert view.post("/v1/runs/no-such-run/replay").status_code == 404


def test_a_gateway_without_the_engine_answers_replay_with_501(tight: GatewayServer) -> None:
    with tight.client(None) as client:
        answer = client.post("/v1/runs/any/replay")
    assert answer.status_code == 501 and answer.json()["error"]["code"] == "not_available"
