"""HTTP routes for holds."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from timebank.holds import service
from timebank.holds.models import Hold, HoldCapture, HoldCreate, HoldRelease
from timebank.http.context import Caller, Db
from timebank.http.idempotency import execute_write
from timebank.http.responses import problems, write_response
from timebank.http.types import require_zone
from timebank.ledger.models import Transaction
from timebank.ledger.routes import IdempotencyKey


@post(
    "/v1/holds",
    status_code=201,
    responses=problems(
        "forbidden",
        "not_found",
        "amount_out_of_range",
        "amount_not_multiple_of_unit",
        "insufficient_balance",
        "invalid_expiry",
        body=True,
        keyed=True,
    ),
    summary="Hold hours for a booked service",
)
async def place_hold(
    data: JSONBody[HoldCreate],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[Hold]:
    require_zone(expires_at=data.expires_at)
    result = await execute_write(
        db, request, principal, "place_hold", "hold", "", data,
        data.member_id, data.minutes, data.description, data.expires_at,
    )  # fmt: skip
    return write_response(result, Hold, "/v1/holds/{id}")


@post(
    "/v1/holds/{hold_id:uuid}/capture",
    status_code=201,
    responses=problems(
        "forbidden",
        "not_found",
        "amount_out_of_range",
        "amount_not_multiple_of_unit",
        "hold_not_pending",
        "capture_exceeds_hold",
        "insufficient_balance",
        "balance_cap_exceeded",
        "same_account",
        "cross_community_not_allowed",
        body=True,
        keyed=True,
    ),
    summary="Take held hours",
)
async def capture_hold(
    hold_id: FromPath[uuid.UUID],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    data: JSONBody[HoldCapture | None] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response[Transaction]:
    body = data or HoldCapture()
    result = await execute_write(
        db, request, principal, "capture_hold", "hold_capture", hold_id, body,
        hold_id, body.minutes, body.provider_member_id,
    )  # fmt: skip
    return write_response(result, Transaction, "/v1/transactions/{id}")


@post(
    "/v1/holds/{hold_id:uuid}/release",
    status_code=200,
    responses=problems("forbidden", "not_found", "hold_not_pending", body=True, keyed=True),
    summary="Release held hours",
)
async def release_hold(
    hold_id: FromPath[uuid.UUID],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    data: JSONBody[HoldRelease | None] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response[Hold]:
    result = await execute_write(db, request, principal, "release_hold", "hold_release", hold_id, None, hold_id)
    return write_response(result, Hold, "/v1/holds/{id}")


@get("/v1/holds/{hold_id:uuid}", responses=problems("forbidden", "not_found"), summary="Get a hold")
async def get_hold(hold_id: FromPath[uuid.UUID], db: Db, principal: Caller) -> Hold:
    return await service.get_hold(db, principal, hold_id)


router = Router(path="/", route_handlers=[place_hold, capture_hold, release_hold, get_hold], tags=["holds"])
