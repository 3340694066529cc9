"""GET /metrics: the read replicas' numbers in the Prometheus text format (empty without replicas)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST

from timebank.replicas.router import ReadRouter


@get("/metrics", opt={"public": True}, include_in_schema=False, sync_to_thread=False)
def metrics(request: Request[Any, Any, State]) -> Response[bytes]:
    reads: ReadRouter | None = request.app.state.get("reads")
    return Response(reads.metrics.render() if reads is not None else b"", media_type=CONTENT_TYPE_LATEST)
