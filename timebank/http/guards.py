"""The guard of every /v1 route."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from timebank.http.body import validate_body
from timebank.http.context import authenticate
from timebank.http.query import validate_query


async def check_request(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Authenticate first, then hold the query string and the body to the exact schema.

    One guard rather than two: Litestar copies the route handler for every guard it calls.
    """
    await authenticate(connection, handler)
    validate_query(connection, handler)
    await validate_body(connection, handler)
