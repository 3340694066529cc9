"""GET /metrics: the read replicas' numbers in the Prometheus text format (empty without replicas)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State

from timebank.replicas.router import ReadRouter

# Litestar adds "; charset=utf-8" to text media types.
PROMETHEUS_TEXT = "text/plain; version=0.0.4"


@get("/metrics", opt={"public": True}, include_in_schema=False, sync_to_thread=False)
def metrics(request: Request[Any, Any, State]) -> Response[str]:
    reads: ReadRouter | None = request.app.state.get("reads")
    return Response(reads.metrics.render() if reads is not None else "", media_type=PROMETHEUS_TEXT)
