"""HTTP routes for communities."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from timebank.communities import service
from timebank.communities.models import Community, CommunityCreate, CommunityPage, Policy
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
    responses=problems("forbidden", "not_found", "community_exists", body=True),
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
    responses=problems("forbidden", "not_found", body=True),
    summary="Replace a community's policy (admin)",
)
async def set_policy(
    slug: FromPath[str], data: JSONBody[Policy], db: Db, principal: Caller, request: Request[Any, Any, State]
) -> Community:
    _require_admin(principal)
    return await service.set_policy(db, principal, request_id_of(request), slug, data)


router = Router(
    path="/v1/communities",
    route_handlers=[create_community, list_communities, get_community, set_policy],
    tags=["communities"],
)
