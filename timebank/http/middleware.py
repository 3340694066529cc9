"""Request id and the one canonical log line per request."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

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
                path=scope.get("path", "")[:200],
                status=status,
                principal=state.get("principal_id"),
                code=state.get("error_code"),
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()

    return middleware
