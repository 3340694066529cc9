"""Credit batches: posted by one SQL operation, read back for staff."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import State

from timebank.crediting.models import CreditBatch, CreditBatchCreate
from timebank.db import Database
from timebank.errors import ForbiddenError, NotFoundError
from timebank.http.context import Principal
from timebank.http.idempotency import WriteResult, execute_write

# Minutes beyond PostgreSQL's bigint are out of every community's range: sent as the largest
# bigint, so that the item is refused like any amount out of range (and not the whole request).
_BIGINT = 2**63 - 1


def _bounded(minutes: int) -> int:
    return max(-_BIGINT, min(_BIGINT, minutes))


async def post(
    db: Database, request: Request[Any, Any, State], principal: Principal, data: CreditBatchCreate,
    *, key: str | None = None,
) -> WriteResult:  # fmt: skip
    """Credit every item of the batch, or none. `key`: as execute_write's."""
    return await execute_write(
        db, request, principal, "post_credit_batch", "credit_batch", "", data,
        data.community, data.service_date, data.description,
        [item.member_id for item in data.credits], [_bounded(item.minutes) for item in data.credits], key=key,
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
