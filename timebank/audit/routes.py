"""HTTP routes for the audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get
from litestar.datastructures import State
from litestar.params import QueryParameter

from timebank.audit import service
from timebank.audit.models import AuditEventPage
from timebank.communities import service as communities
from timebank.errors import ForbiddenError
from timebank.http.context import Caller, Db
from timebank.http.moments import UTC_ZONE, moment_parameter, parse_moment, resolve_moments
from timebank.http.pagination import decode_cursor, next_cursor, page_limit
from timebank.http.responses import problems
from timebank.http.types import Cursor, Limit


@get(
    "/v1/audit-events",
    responses=problems("invalid_request", "forbidden", "not_found", "invalid_cursor"),
    summary="The audit trail, oldest first",
)
async def list_audit_events(
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    community: Annotated[str | None, QueryParameter(max_length=63)] = None,
    actor: Annotated[str | None, QueryParameter(max_length=64)] = None,
    action: Annotated[str | None, QueryParameter(max_length=64)] = None,
    after: Annotated[
        str | None,
        moment_parameter(
            "after",
            "Events after this moment",
            "the time zone of the community named, else of the caller's community, else UTC",
        ),
    ] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> AuditEventPage:
    """Admins and global auditors read every event; coordinators and auditors their community's."""
    after_moment = parse_moment("after", after)
    if not (principal.reads_everything or {"coordinator", "auditor"} & set(principal.roles)):
        raise ForbiddenError("only admins, auditors and coordinators may read the audit trail")
    community_id = None
    time_zone = UTC_ZONE
    if community is not None:
        visible = await communities.get_visible(db, principal, community)
        community_id, time_zone = visible.id, visible.policy.time_zone
    elif not principal.reads_everything:
        community_id = principal.community_id
    if after_moment is not None and after_moment.day is not None and community is None and principal.community_id:
        # A day without a community named: midnight where the caller's own community is.
        time_zone = await communities.time_zone_of(db, principal.community_id)
    (after_at,) = await resolve_moments(db, time_zone, after_moment)
    settings = request.app.state.settings
    size = page_limit(limit, settings.page_size_default, settings.page_size_max)
    items, rows = await service.list_events(db, community_id, actor, action, after_at, decode_cursor(cursor), size)
    return AuditEventPage(items=items, next_cursor=next_cursor(rows, size, "seq"))


router = Router(path="/", route_handlers=[list_audit_events], tags=["audit"])
