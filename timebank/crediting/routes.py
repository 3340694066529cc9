"""HTTP routes for activity crediting."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from timebank.crediting import service
from timebank.crediting.models import CreditBatch, CreditBatchCreate
from timebank.http.context import Caller, Db
from timebank.http.responses import problems, write_response
from timebank.http.types import require_calendar_dates
from timebank.ledger.routes import IdempotencyKey


@post(
    "/v1/credit-batches",
    status_code=201,
    responses=problems(
        "forbidden",
        "not_found",
        "service_date_in_future",
        "duplicate_member",
        "not_a_member",
        "not_a_volunteer",
        "amount_out_of_range",
        "amount_not_multiple_of_unit",
        "not_eligible",
        "balance_cap_exceeded",
        body=True,
        keyed=True,
    ),
    summary="Credit an activity's volunteers, all or nothing (admin, coordinator)",
)
async def post_credit_batch(
    data: JSONBody[CreditBatchCreate],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[CreditBatch]:
    """1 to 500 credits, each member at most once, in one database transaction. If any item breaks a
    rule nothing is credited: 422 with the first failing item's `code`, and `errors` naming every
    failing item (`index` 0-based, `member_id`, `code`). One transaction, with its own audit event,
    per item."""
    require_calendar_dates(service_date=data.service_date)
    result = await service.post(db, request, principal, data)
    return write_response(result, CreditBatch, "/v1/credit-batches/{id}")


@get(
    "/v1/credit-batches/{batch_id:uuid}",
    responses=problems("forbidden", "not_found"),
    summary="Get a credit batch (staff, auditors)",
)
async def get_credit_batch(batch_id: FromPath[uuid.UUID], db: Db, principal: Caller) -> CreditBatch:
    return await service.get_visible(db, principal, batch_id)


router = Router(path="/", route_handlers=[post_credit_batch, get_credit_batch], tags=["credit batches"])
