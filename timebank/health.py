"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Router, get
from litestar.datastructures import State

from timebank.db import Database
from timebank.errors import UnavailableError
from timebank.http.responses import problems


class Status(msgspec.Struct, frozen=True):
    status: str


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
    return Status(status="ready")


router = Router(path="/", route_handlers=[health, ready], tags=["health"])
