"""HTTP routes for members, their tokens, and the caller itself."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, cast

from litestar import Request, Response, Router, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from msgspec import UnsetType

from timebank.communities import service as communities
from timebank.errors import ForbiddenError, InvalidRequestError
from timebank.http.context import Caller, Db, request_id_of
from timebank.http.pagination import decode_cursor, next_cursor, page_limit
from timebank.http.responses import problems, write_response
from timebank.http.types import Cursor, Limit, MemberRole, PrincipalRole, require_calendar_dates
from timebank.ledger.routes import IdempotencyKey
from timebank.members import pins, relatives, service
from timebank.members.models import (
    IssuedToken,
    Me,
    Member,
    MemberChange,
    MemberCreate,
    MemberPage,
    PinSet,
    Relative,
    RelativeCreate,
    RelativePage,
)


@post(
    "/v1/communities/{slug:str}/members",
    status_code=201,
    responses=problems("forbidden", "not_found", "member_exists", body=True),
    summary="Register a member",
)
async def create_member(
    slug: FromPath[str], data: JSONBody[MemberCreate], db: Db, principal: Caller, request: Request[Any, Any, State]
) -> Response[Member]:
    require_calendar_dates(birth_date=data.birth_date)
    if len(set(data.roles)) != len(data.roles):
        raise InvalidRequestError(
            "each role may be given once", errors=[{"field": "$.roles", "message": "roles must be unique"}]
        )
    member = await service.create_member(db, principal, request_id_of(request), slug, data)
    return Response(member, status_code=201, headers={"Location": f"/v1/members/{member.id}"})


@get(
    "/v1/communities/{slug:str}/members",
    responses=problems("invalid_request", "forbidden", "not_found", "invalid_cursor"),
    summary="List a community's members",
)
async def list_members(
    slug: FromPath[str],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    role: FromQuery[MemberRole | None] = None,
    grid: Annotated[str | None, QueryParameter(max_length=100)] = None,
    q: Annotated[
        str | None,
        QueryParameter(
            max_length=100,
            description="part of the display name, or exactly an external_ref, a phone or a member_no",
        ),
    ] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> MemberPage:
    community = await communities.get_visible(db, principal, slug)
    if not principal.is_staff_of(community.id, "coordinator", "auditor"):
        raise ForbiddenError("only coordinators and auditors may list members")
    settings = request.app.state.settings
    size = page_limit(limit, settings.page_size_default, settings.page_size_max)
    items, rows = await service.list_members(db, community.id, role, grid, q, decode_cursor(cursor), size)
    return MemberPage(items=items, next_cursor=next_cursor(rows, size, "seq"))


@get("/v1/members/{member_id:uuid}", responses=problems("forbidden", "not_found"), summary="Get a member")
async def get_member(member_id: FromPath[uuid.UUID], db: Db, principal: Caller) -> Member:
    return await service.get_visible(db, principal, member_id)


@post(
    "/v1/members/{member_id:uuid}/tokens",
    status_code=201,
    responses=problems("forbidden", "not_found"),
    summary="Issue a member token",
)
async def issue_token(
    member_id: FromPath[uuid.UUID], db: Db, principal: Caller, request: Request[Any, Any, State]
) -> Response[IssuedToken]:
    issued = await service.issue_token(db, principal, request_id_of(request), member_id)
    # The secret is shown once; what can be read again is the member's list of tokens.
    return Response(issued, status_code=201, headers={"Location": f"/v1/members/{member_id}/tokens"})


@get("/v1/me", responses=problems(), summary="Who the caller is")
async def get_me(db: Db, principal: Caller) -> Me:
    member = await service.get_own(db, principal.member_id) if principal.member_id else None
    community = await communities.slug_of(db, principal.community_id) if principal.community_id else None
    roles = cast("list[PrincipalRole]", list(principal.roles))
    return Me(principal_id=principal.id, roles=roles, member=member, community=community)


@patch(
    "/v1/members/{member_id:uuid}",
    responses=problems("forbidden", "not_found", "member_exists", body=True, keyed=True),
    summary="Change a member's record, with a reason (admin, coordinator)",
)
async def change_member(
    member_id: FromPath[uuid.UUID],
    data: JSONBody[MemberChange],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[Member]:
    """Any of the fields given change; `reason` is required. The audit event (member.changed) holds
    the record before and after. Only an admin gives or takes the coordinator and auditor roles."""
    if isinstance(data.birth_date, date):
        require_calendar_dates(birth_date=data.birth_date)
    if not isinstance(data.roles, UnsetType) and len(set(data.roles)) != len(data.roles):
        raise InvalidRequestError(
            "each role may be given once", errors=[{"field": "$.roles", "message": "roles must be unique"}]
        )
    result = await service.change_member(db, request, principal, member_id, data)
    return write_response(result, Member)


@post(
    "/v1/members/{member_id:uuid}/pin",
    status_code=204,
    responses=problems("forbidden", "not_found", "too_many_attempts", body=True, keyed=True),
    summary="Set a member's PIN (admin, coordinator; the member itself with current_pin)",
)
async def set_member_pin(
    member_id: FromPath[uuid.UUID],
    data: JSONBody[PinSet],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[None]:
    """Six digits, stored as an Argon2id hash; the PIN never appears in a response, log line or audit
    event. A member's first PIN is set by staff; the member itself then changes it with
    `current_pin` (five wrong ones in a row lock changes for 15 minutes: 429 with Retry-After).
    The Idempotency-Key's request identity leaves the PINs out."""
    result = await pins.set_pin(db, request, principal, member_id, data)
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    return Response(None, status_code=204, headers=headers)


@post(
    "/v1/members/{member_id:uuid}/relatives",
    status_code=201,
    responses=problems(
        "forbidden", "not_found", "relative_exists", "same_account", "cross_community_not_allowed",
        body=True, keyed=True,
    ),
    summary="Link a relative, for both sides (admin, coordinator)",
)  # fmt: skip
async def add_relative(
    member_id: FromPath[uuid.UUID],
    data: JSONBody[RelativeCreate],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[Relative]:
    """`relation` is what the relative is to the member; the other side records the inverse
    (a parent link is a child link seen from the other side)."""
    result = await relatives.add(db, request, principal, member_id, data)
    response = write_response(result, Relative)
    if result.status == 201:
        response.headers["Location"] = f"/v1/members/{member_id}/relatives"
    return response


@get(
    "/v1/members/{member_id:uuid}/relatives",
    responses=problems("forbidden", "not_found"),
    summary="A member's relatives (the member itself, staff)",
)
async def list_relatives(member_id: FromPath[uuid.UUID], db: Db, principal: Caller) -> RelativePage:
    return RelativePage(items=await relatives.listed(db, principal, member_id), next_cursor=None)


@delete(
    "/v1/members/{member_id:uuid}/relatives/{relative_member_id:uuid}",
    status_code=204,
    responses=problems("forbidden", "not_found", keyed=True),
    summary="Unlink a relative, both sides (admin, coordinator)",
)
async def remove_relative(
    member_id: FromPath[uuid.UUID],
    relative_member_id: FromPath[uuid.UUID],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[None]:
    result = await relatives.remove(db, request, principal, member_id, relative_member_id)
    return Response(None, status_code=204, headers={"Idempotent-Replayed": "true"} if result.replayed else {})


router = Router(
    path="/",
    route_handlers=[
        create_member,
        list_members,
        get_member,
        issue_token,
        get_me,
        change_member,
        set_member_pin,
        add_relative,
        list_relatives,
        remove_relative,
    ],
    tags=["members"],
)
