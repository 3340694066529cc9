"""Credit batches: posted by one SQL operation, read back for staff."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import State

from timebank.crediting.models import CreditBatch, CreditBatchCreate
from timebank.db import Database
from timebank.errors import ForbiddenError, InvalidRequestError, NotFoundError
from timebank.http.context import Principal
from timebank.http.idempotency import WriteResult, execute_write


def check_items(data: CreditBatchCreate) -> None:
    """Each member at most once (400 naming every repeated item)."""
    seen: set[uuid.UUID] = set()
    repeated = []
    for index, item in enumerate(data.credits):
        if item.member_id in seen:
            repeated.append(
                {"field": f"$.credits[{index}].member_id", "message": "this member is already in the batch"}
            )
        seen.add(item.member_id)
    if repeated:
        raise InvalidRequestError("each member may be credited once in a batch", errors=repeated)


async def post(
    db: Database, request: Request[Any, Any, State], principal: Principal, data: CreditBatchCreate
) -> WriteResult:
    check_items(data)
    return await execute_write(
        db, request, principal, "post_credit_batch", "credit_batch", "", data,
        data.community, data.service_date, data.description,
        [item.member_id for item in data.credits], [item.minutes for item in data.credits],
    )  # fmt: skip


async def get_visible(db: Database, actor: Principal, batch_id: uuid.UUID) -> CreditBatch:
    """The batch, for admins and the staff and auditors of its community (403 for its other members,
    404 for everyone else)."""
    row = await db.fetchrow(
        "select community_id, _credit_batch_json(id)::text as body from credit_batches where id = $1", batch_id
    )
    if row is None or not actor.can_see_community(row["community_id"]):
        raise NotFoundError("no such credit batch")
    if not actor.is_staff_of(row["community_id"], "coordinator", "auditor"):
        raise ForbiddenError("only staff and auditors may read credit batches")
    return msgspec.json.decode(row["body"], type=CreditBatch)
