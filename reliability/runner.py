"""Sending an operation's attempts over real HTTP and recording each in the history."""

from __future__ import annotations

import time
from typing import Any

import httpx

from reliability.history import Attempt, HistoryWriter, Op, request_id_for

REQUEST_TIMEOUT_SECONDS = 10.0


def _error_kind(exc: httpx.HTTPError) -> str:
    """How a request without an answer failed. Only a refused connection proves it was never sent."""
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    return "transport:" + type(exc).__name__


def _decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return {"_raw": response.text[:500]}


class Runner:
    """Runs attempts of operations, appending each to the operation and to the history file."""

    def __init__(self, base_url: str, writer: HistoryWriter) -> None:
        self.base_url = base_url
        self.writer = writer
        self.started = time.monotonic()
        self.ops: list[Op] = []
        self.requests_sent = 0

    def client(self) -> httpx.AsyncClient:
        """One HTTP client per workload client: one connection, reused while it lives."""
        return httpx.AsyncClient(
            base_url=self.base_url,
            timeout=REQUEST_TIMEOUT_SECONDS,
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
        )

    def now(self) -> float:
        return time.monotonic() - self.started

    def register(self, op: Op) -> Op:
        self.ops.append(op)
        return op

    async def attempt(self, http: httpx.AsyncClient, op: Op, phase: str) -> Attempt:
        """Send the operation once more, exactly as first sent, under a new request id."""
        index = len(op.attempts)
        attempt = Attempt(
            phase=phase, request_id=request_id_for(op.op_id, index), started=self.now(), sent_at=time.time()
        )
        op.attempts.append(attempt)
        self.writer.invoke(op, index)
        headers = {"Authorization": f"Bearer {op.token}", "X-Request-ID": attempt.request_id}
        if op.key is not None:
            headers["Idempotency-Key"] = op.key
        self.requests_sent += 1
        try:
            response = await http.request(
                op.method,
                op.path,
                headers=headers,
                json=op.body if op.method == "POST" else None,
                params=op.params,
            )
        except httpx.HTTPError as exc:
            attempt.error = _error_kind(exc)
        else:
            attempt.status = response.status_code
            attempt.body = _decode(response)
            attempt.replayed = response.headers.get("idempotent-replayed") == "true"
        attempt.finished = self.now()
        self.writer.complete(op, index)
        return attempt
