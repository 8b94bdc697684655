"""The gateway's JSON responses, rendered by orjson: Starlette's own renders through the standard library's
encoder, the largest single cost of a ``202`` on the start-run path after the produce."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as StarletteJSONResponse


class JSONResponse(StarletteJSONResponse):
    """``application/json``, compact and UTF-8, as Starlette's; non-string keys are written as strings."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
