"""Relatives: links between two members of one community, recorded for both sides."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request
from litestar.datastructures import State

from timebank.db import Database
from timebank.errors import ForbiddenError
from timebank.http.context import Principal
from timebank.http.idempotency import WriteResult, execute_write
from timebank.members import service
from timebank.members.models import Relative, RelativeCreate


async def add(
    db: Database, request: Request[Any, Any, State], principal: Principal, member_id: uuid.UUID, data: RelativeCreate,
    *, key: str | None = None,
) -> WriteResult:  # fmt: skip
    """Link two members both ways. `key`: as execute_write's."""
    return await execute_write(
        db, request, principal, "add_relative", "relative", member_id, data,
        member_id, data.relative_member_id, data.relation, key=key,
    )  # fmt: skip


async def remove(
    db: Database,
    request: Request[Any, Any, State],
    principal: Principal,
    member_id: uuid.UUID,
    relative_member_id: uuid.UUID,
) -> WriteResult:
    target = f"{member_id}/{relative_member_id}"
    return await execute_write(
        db, request, principal, "remove_relative", "relative_removal", target, None, member_id, relative_member_id
    )


async def listed(db: Database, principal: Principal, member_id: uuid.UUID) -> list[Relative]:
    """The member's relatives, for the member itself and its community's staff and auditors."""
    community_id = await service.visible_community(db, principal, member_id)
    if not service.may_read_member(principal, community_id, member_id):
        raise ForbiddenError("members may read only their own relatives")
    rows = await db.fetch(
        """select r.relative_member_id as member_id, m.display_name, r.relation, r.since
             from relatives r join members m on m.id = r.relative_member_id
            where r.member_id = $1 order by r.since, r.relative_member_id""",
        member_id,
    )
    return [Relative(**dict(row)) for row in rows]
