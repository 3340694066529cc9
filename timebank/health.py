"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Router, get
from litestar.datastructures import State

from timebank.db import Database
from timebank.errors import UnavailableError
from timebank.http.responses import problems
from timebank.replicas.router import ReadRouter, StandbyStatus


class Status(msgspec.Struct, frozen=True, omit_defaults=True):
    status: str
    # With read replicas: each standby, and whether reads go to it now.
    standbys: list[StandbyStatus] | None = None


@get("/health", summary="The process is alive", opt={"public": True})
async def health() -> Status:
    return Status(status="ok")


@get(
    "/ready",
    responses=problems(authenticated=False),
    opt={"public": True},
    summary="The service takes requests: database answers, not draining",
)
async def ready(request: Request[Any, Any, State]) -> Status:
    if request.app.state.get("draining"):
        raise UnavailableError("the service is shutting down")
    db: Database = request.app.state.db
    await db.fetchval("select 1")
    # A standby out of use does not make the service unready: its reads go to the primary.
    reads: ReadRouter | None = request.app.state.get("reads")
    return Status(status="ready", standbys=reads.status() if reads is not None else None)


router = Router(path="/", route_handlers=[health, ready], tags=["health"])
