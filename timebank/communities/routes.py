"""HTTP routes for communities."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, Router, get, patch, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from timebank.communities import service
from timebank.communities.models import (
    Community,
    CommunityCreate,
    CommunityPage,
    Policy,
    PolicyChange,
    PolicyReplace,
)
from timebank.errors import ForbiddenError
from timebank.http.context import Caller, Db, request_id_of
from timebank.http.pagination import decode_cursor, next_cursor, page_limit
from timebank.http.responses import problems
from timebank.http.types import Cursor, Limit


def _require_admin(principal: Caller) -> None:
    if not principal.is_admin:
        raise ForbiddenError("only an admin may do this")


@post(
    "/",
    status_code=201,
    responses=problems("forbidden", "not_found", "community_exists", "unknown_time_zone", body=True),
    summary="Create a community (admin)",
)
async def create_community(
    data: JSONBody[CommunityCreate], db: Db, principal: Caller, request: Request[Any, Any, State]
) -> Response[Community]:
    _require_admin(principal)
    community = await service.create_community(
        db, principal, request_id_of(request), data.slug, data.name, data.parent_slug, data.policy or Policy()
    )
    return Response(community, status_code=201, headers={"Location": f"/v1/communities/{community.slug}"})


@get("/", responses=problems("invalid_request", "invalid_cursor"), summary="List the communities the caller may see")
async def list_communities(
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    limit: Limit = None,
    cursor: Cursor = None,
) -> CommunityPage:
    settings = request.app.state.settings
    size = page_limit(limit, settings.page_size_default, settings.page_size_max)
    items, rows = await service.list_visible(db, principal, decode_cursor(cursor), size)
    return CommunityPage(items=items, next_cursor=next_cursor(rows, size, "seq"))


@get("/{slug:str}", responses=problems("not_found"), summary="Get a community")
async def get_community(slug: FromPath[str], db: Db, principal: Caller) -> Community:
    return await service.get_visible(db, principal, slug)


@put(
    "/{slug:str}/policy",
    responses=problems("forbidden", "not_found", "unknown_time_zone", body=True),
    summary="Replace a community's policy: every field (admin)",
)
async def set_policy(
    slug: FromPath[str], data: JSONBody[PolicyReplace], db: Db, principal: Caller, request: Request[Any, Any, State]
) -> Community:
    """Every field of the policy is required; a body that lacks some is 400 naming each missing field."""
    _require_admin(principal)
    return await service.change_policy(db, principal, request_id_of(request), slug, msgspec.structs.asdict(data))


@patch(
    "/{slug:str}/policy",
    responses=problems("forbidden", "not_found", "unknown_time_zone", body=True),
    summary="Change some fields of a community's policy (admin)",
)
async def change_policy(
    slug: FromPath[str], data: JSONBody[PolicyChange], db: Db, principal: Caller, request: Request[Any, Any, State]
) -> Community:
    """Only the fields given change; the others keep their value."""
    _require_admin(principal)
    return await service.change_policy(db, principal, request_id_of(request), slug, data.given())


router = Router(
    path="/v1/communities",
    route_handlers=[create_community, list_communities, get_community, set_policy, change_policy],
    tags=["communities"],
)
