"""HTTP routes for holds."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from timebank.communities import service as communities
from timebank.errors import ForbiddenError
from timebank.holds import service
from timebank.holds.models import Hold, HoldCapture, HoldCreate, HoldPage, HoldRelease, HoldStatus
from timebank.http.context import Caller, Db
from timebank.http.idempotency import execute_write
from timebank.http.pagination import decode_cursor, next_cursor, page_limit
from timebank.http.responses import problems, write_response
from timebank.http.types import Cursor, Limit, require_zone
from timebank.ledger.models import Transaction
from timebank.ledger.routes import IdempotencyKey
from timebank.members import service as members


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
        "not_eligible",
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
        "hold_belongs_to_request",
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
    responses=problems("forbidden", "not_found", "hold_not_pending", "hold_belongs_to_request", body=True, keyed=True),
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


def _page_size(request: Request[Any, Any, State], limit: int | None) -> int:
    settings = request.app.state.settings
    return page_limit(limit, settings.page_size_default, settings.page_size_max)


@get(
    "/v1/communities/{slug:str}/holds",
    responses=problems("invalid_request", "forbidden", "not_found", "invalid_cursor"),
    summary="A community's holds, newest first",
)
async def list_community_holds(
    slug: FromPath[str],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    status: FromQuery[HoldStatus | None] = None,
    member_id: FromQuery[uuid.UUID | None] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> HoldPage:
    """Staff (admin, coordinators and auditors of the community). `expired` includes pending holds
    past their expires_at, as GET /v1/holds/{id} shows them."""
    community = await communities.get_visible(db, principal, slug)
    if not principal.is_staff_of(community.id, "coordinator", "auditor"):
        raise ForbiddenError("only coordinators and auditors may list a community's holds")
    size = _page_size(request, limit)
    items, rows = await service.list_holds(db, community.id, member_id, status, decode_cursor(cursor), size)
    return HoldPage(items=items, next_cursor=next_cursor(rows, size, "seq"))


@get(
    "/v1/members/{member_id:uuid}/holds",
    responses=problems("invalid_request", "forbidden", "not_found", "invalid_cursor"),
    summary="A member's holds, newest first",
)
async def list_member_holds(
    member_id: FromPath[uuid.UUID],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    status: FromQuery[HoldStatus | None] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> HoldPage:
    """The member itself, and staff (admin, coordinators and auditors of its community)."""
    community_id = await members.visible_community(db, principal, member_id)
    if not (principal.member_id == member_id or principal.is_staff_of(community_id, "coordinator", "auditor")):
        raise ForbiddenError("members may read only their own holds")
    size = _page_size(request, limit)
    items, rows = await service.list_holds(db, None, member_id, status, decode_cursor(cursor), size)
    return HoldPage(items=items, next_cursor=next_cursor(rows, size, "seq"))


router = Router(
    path="/",
    route_handlers=[place_hold, capture_hold, release_hold, get_hold, list_community_holds, list_member_holds],
    tags=["holds"],
)
