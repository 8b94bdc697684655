"""``awe gateway``: the REST and WebSocket gateway under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from awe.cli_common import err, fail, settings
from schemas.exceptions import AweError
from streams.admin import ensure_topics


def gateway(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8080,
    require_auth: Annotated[
        bool, typer.Option("--require-auth", help="refuse to start without API keys or a JWT key")
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Serve REST (/v1, /openapi.json, /docs) and the WebSocket /v1/stream until Ctrl-C."""
    import uvicorn

    from gateway.app import OPEN_WARNING, create_app

    config = settings()
    try:
        ensure_topics(config)
        app = create_app(config, require_auth=require_auth)
    except AweError as e:
        fail(e.message)
    if config.api_keys is None and config.api_keys_file is None and config.jwt_secret is None and (
        config.jwt_public_key_file is None
    ):
        err.print(f"[bold red]WARNING:[/bold red] {OPEN_WARNING}", highlight=False)
    uvicorn.run(
        app,
        host=host,
        port=port,
        ws="websockets-sansio",
        # The protocol's own limit only guards memory; the app answers oversized messages with its error.
        ws_max_size=config.ws_max_message_bytes * 4,
        log_level=log_level,
        timeout_graceful_shutdown=5,
    )
