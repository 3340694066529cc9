"""HTTP routes for members, their tokens, and the caller itself."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, cast

from litestar import Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from timebank.communities import service as communities
from timebank.errors import ForbiddenError, InvalidRequestError
from timebank.http.context import Caller, Db, request_id_of
from timebank.http.pagination import decode_cursor, next_cursor, page_limit
from timebank.http.responses import problems
from timebank.http.types import Cursor, Limit, MemberRole, PrincipalRole, require_calendar_dates
from timebank.members import service
from timebank.members.models import IssuedToken, Me, Member, MemberCreate, MemberPage


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
    q: Annotated[str | None, QueryParameter(max_length=100)] = None,
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


router = Router(
    path="/", route_handlers=[create_member, list_members, get_member, issue_token, get_me], tags=["members"]
)
