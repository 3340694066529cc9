"""Storing each caller's write position, before the answer leaves, so that its next read, through
any worker process or instance of the service, can see the write (positions.py)."""

from __future__ import annotations

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from timebank.replicas.router import SAFE_METHODS, ReadRouter


def read_your_writes_middleware(app: Litestar, handler: ASGIApp) -> ASGIApp:
    """After any request that may have written, store the caller's position before its answer starts.

    The answer is held until then (one round trip to the primary): a caller that reads after seeing
    it, through whichever process, must find the position stored. Without read replicas this adds
    nothing to a request.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        reads: ReadRouter | None = app.state.get("reads")
        if reads is None or scope["type"] != ScopeType.HTTP or scope.get("method") in SAFE_METHODS:
            await handler(scope, receive, send)
            return

        async def send_after_noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                caller = scope.get("state", {}).get("principal_id")
                if caller:
                    await reads.note_position(str(caller))
            await send(message)

        await handler(scope, receive, send_after_noting)

    return middleware
