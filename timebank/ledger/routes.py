"""HTTP routes for accounts, statements and the writes that move hours."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody

from timebank.communities import service as communities
from timebank.errors import DomainError, ForbiddenError
from timebank.http.context import Caller, Db
from timebank.http.idempotency import execute_write
from timebank.http.moments import FromMoment, ToMoment, check_order, moment_parameter, parse_moment, resolve_moments
from timebank.http.pagination import decode_cursor, next_cursor, page_limit
from timebank.http.responses import problems, write_response
from timebank.http.types import Cursor, Limit, require_calendar_dates
from timebank.ledger import service
from timebank.ledger.models import (
    Account,
    Balance,
    CreditCreate,
    EntryPage,
    PoolGrantCreate,
    RedemptionCreate,
    ReversalCreate,
    Transaction,
    TransactionKind,
    TransactionPage,
    TransferCreate,
)

# Declared optional so that a missing key is answered 400 idempotency_key_required (checked in
# execute_write) rather than the framework's generic validation error; every write needs one.
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description=(
            "Required. 1–200 printable ASCII characters, scoped to the caller; a retry replays the first answer"
        ),
    ),
]
AsOf = Annotated[
    str | None, moment_parameter("as_of", "The balance including every entry created at or before this moment")
]


def _page_size(request: Request[Any, Any, State], limit: int | None) -> int:
    settings = request.app.state.settings
    return page_limit(limit, settings.page_size_default, settings.page_size_max)


@get(
    "/v1/accounts/{account_id:uuid}",
    responses=problems("forbidden", "not_found"),
    summary="Get an account and its balance",
)
async def get_account(account_id: FromPath[uuid.UUID], db: Db, principal: Caller) -> Account:
    return await service.get_account(db, principal, account_id)


@get(
    "/v1/accounts/{account_id:uuid}/entries",
    responses=problems("invalid_request", "forbidden", "not_found", "invalid_cursor", "invalid_date_range"),
    summary="An account's statement, newest first",
)
async def list_entries(
    account_id: FromPath[uuid.UUID],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    limit: Limit = None,
    cursor: Cursor = None,
    start: FromMoment = None,
    end: ToMoment = None,
) -> EntryPage:
    bounds = parse_moment("from", start), parse_moment("to", end)
    size = _page_size(request, limit)
    items, rows = await service.list_entries(db, principal, account_id, decode_cursor(cursor), *bounds, size)
    return EntryPage(items=items, next_cursor=next_cursor(rows, size, "account_version"))


@get(
    "/v1/accounts/{account_id:uuid}/balance",
    responses=problems("invalid_request", "forbidden", "not_found"),
    summary="An account's balance at a moment",
)
async def balance_as_of(account_id: FromPath[uuid.UUID], db: Db, principal: Caller, as_of: AsOf = None) -> Balance:
    return await service.balance_as_of(db, principal, account_id, parse_moment("as_of", as_of))


@get(
    "/v1/transactions/{transaction_id:uuid}", responses=problems("forbidden", "not_found"), summary="Get a transaction"
)
async def get_transaction(transaction_id: FromPath[uuid.UUID], db: Db, principal: Caller) -> Transaction:
    return await service.get_transaction(db, principal, transaction_id)


@get(
    "/v1/communities/{slug:str}/transactions",
    responses=problems("invalid_request", "forbidden", "not_found", "invalid_cursor", "invalid_date_range"),
    summary="A community's transactions, newest first",
)
async def list_transactions(
    slug: FromPath[str],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    kind: FromQuery[TransactionKind | None] = None,
    limit: Limit = None,
    cursor: Cursor = None,
    start: FromMoment = None,
    end: ToMoment = None,
) -> TransactionPage:
    bounds = parse_moment("from", start), parse_moment("to", end)
    community = await communities.get_visible(db, principal, slug)
    if not principal.is_staff_of(community.id, "coordinator", "auditor"):
        raise ForbiddenError("only coordinators and auditors may list a community's transactions")
    start_at, end_at = await resolve_moments(db, community.policy.time_zone, *bounds)
    check_order(start_at, end_at)
    size = _page_size(request, limit)
    items, rows = await service.list_transactions(db, community.id, kind, decode_cursor(cursor), start_at, end_at, size)
    return TransactionPage(items=items, next_cursor=next_cursor(rows, size, "seq"))


@post(
    "/v1/credits",
    status_code=201,
    responses=problems(
        "forbidden",
        "not_found",
        "amount_out_of_range",
        "amount_not_multiple_of_unit",
        "not_a_volunteer",
        "balance_cap_exceeded",
        "service_date_in_future",
        "not_eligible",
        body=True,
        keyed=True,
    ),
    summary="Credit a volunteer's served hours",
)
async def post_credit(
    data: JSONBody[CreditCreate],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[Transaction]:
    require_calendar_dates(service_date=data.service_date)
    result = await execute_write(
        db, request, principal, "post_credit", "credit", "", data,
        data.member_id, data.minutes, data.service_date, data.description,
    )  # fmt: skip
    return write_response(result, Transaction, "/v1/transactions/{id}")


@post(
    "/v1/redemptions",
    status_code=201,
    responses=problems(
        "forbidden",
        "not_found",
        "amount_out_of_range",
        "amount_not_multiple_of_unit",
        "insufficient_balance",
        "balance_cap_exceeded",
        "same_account",
        "cross_community_not_allowed",
        "not_eligible",
        body=True,
        keyed=True,
    ),
    summary="Redeem a member's hours for a service",
)
async def post_redemption(
    data: JSONBody[RedemptionCreate],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[Transaction]:
    result = await execute_write(
        db, request, principal, "post_redemption", "redemption", "", data,
        data.member_id, data.minutes, data.description, data.provider_member_id,
    )  # fmt: skip
    return write_response(result, Transaction, "/v1/transactions/{id}")


@post(
    "/v1/transfers",
    status_code=201,
    responses=problems(
        "forbidden",
        "not_found",
        "amount_out_of_range",
        "amount_not_multiple_of_unit",
        "insufficient_balance",
        "balance_cap_exceeded",
        "same_account",
        "cross_community_not_allowed",
        "invalid_transfer_target",
        "not_a_relative",
        body=True,
        keyed=True,
    ),
    summary="Gift hours to a member, or donate them to the pool",
)
async def post_transfer(
    data: JSONBody[TransferCreate],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[Transaction]:
    if (data.to_member_id is None) == (not data.to_pool):
        raise DomainError(
            "give exactly one target: to_member_id, or to_pool true",
            code="invalid_transfer_target",
            errors=[{"field": "$.to_member_id", "message": "exactly one of to_member_id and to_pool"}],
        )
    result = await execute_write(
        db, request, principal, "post_transfer", "transfer", "", data,
        data.from_member_id, data.to_member_id, data.to_pool, data.minutes, data.description,
    )  # fmt: skip
    return write_response(result, Transaction, "/v1/transactions/{id}")


@post(
    "/v1/pool-grants",
    status_code=201,
    responses=problems(
        "forbidden",
        "not_found",
        "amount_out_of_range",
        "amount_not_multiple_of_unit",
        "insufficient_balance",
        "balance_cap_exceeded",
        "not_eligible",
        body=True,
        keyed=True,
    ),
    summary="Grant donated hours from the pool",
)
async def post_pool_grant(
    data: JSONBody[PoolGrantCreate],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[Transaction]:
    result = await execute_write(
        db, request, principal, "post_pool_grant", "pool_grant", "", data,
        data.member_id, data.minutes, data.description,
    )  # fmt: skip
    return write_response(result, Transaction, "/v1/transactions/{id}")


@post(
    "/v1/transactions/{transaction_id:uuid}/reversal",
    status_code=201,
    responses=problems(
        "forbidden",
        "not_found",
        "already_reversed",
        "cannot_reverse_reversal",
        "insufficient_balance",
        "balance_cap_exceeded",
        body=True,
        keyed=True,
    ),
    summary="Reverse a transaction",
)
async def reverse_transaction(
    transaction_id: FromPath[uuid.UUID],
    data: JSONBody[ReversalCreate],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[Transaction]:
    result = await execute_write(
        db, request, principal, "reverse_transaction", "reversal", transaction_id, data,
        transaction_id, data.reason,
    )  # fmt: skip
    return write_response(result, Transaction, "/v1/transactions/{id}")


router = Router(
    path="/",
    route_handlers=[
        get_account,
        list_entries,
        balance_as_of,
        get_transaction,
        list_transactions,
        post_credit,
        post_redemption,
        post_transfer,
        post_pool_grant,
        reverse_transaction,
    ],
    tags=["ledger"],
)
