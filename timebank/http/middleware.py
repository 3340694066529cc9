"""Request id and the one canonical log line per request."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

log = structlog.get_logger("timebank.request")

MAX_REQUEST_ID_CHARS = 200


def _valid_request_id(value: bytes) -> str | None:
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return None
    if 1 <= len(text) <= MAX_REQUEST_ID_CHARS and all("!" <= ch <= "~" for ch in text):
        return text
    return None


def request_context_middleware(app: ASGIApp) -> ASGIApp:
    """Honour or mint X-Request-ID, echo it, and log method, route, status, principal and duration."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = (_valid_request_id(incoming) if incoming else None) or uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            route = scope.get("path_template")
            log.info(
                "request_handled",
                method=scope.get("method"),
                route=route or "unmatched",
                # A path that holds a secret (a sign-in card's, /login/card/{secret}) is logged as its route.
                path=route if route and "{secret}" in route else scope.get("path", "")[:200],
                status=status,
                principal=state.get("principal_id"),
                code=state.get("error_code"),
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()

    return middleware


def _path_pattern(template: str) -> re.Pattern[str]:
    """A route template (`/v1/holds/{hold_id:uuid}/capture`) as a regular expression for its paths."""
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts))


def options_middleware(app: Litestar, inner: ASGIApp) -> ASGIApp:
    """Answer OPTIONS with the methods the resource has (RFC 9110), without a token.

    Litestar's own OPTIONS handler reports the methods of whichever handler registered first at a
    path, so `OPTIONS /v1/communities` said `POST` only; the 405 answers already list them right.
    """
    table: list[tuple[re.Pattern[str], str]] = []

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope.get("method") != "OPTIONS":
            await inner(scope, receive, send)
            return
        if not table:
            table.extend(
                (_path_pattern(route.path), ", ".join(sorted(route.methods)))
                for route in app.routes
                if isinstance(route, HTTPRoute)
            )
        allowed = next((methods for pattern, methods in table if pattern.fullmatch(scope["path"])), None)
        if allowed is None:
            await inner(scope, receive, send)
            return
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": 204,
            "headers": [(b"allow", allowed.encode())],
        }
        await send(start)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return middleware
