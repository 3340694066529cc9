"""HTTP routes for service types and service requests."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, Router, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from timebank.communities import service as communities
from timebank.http.context import Caller, Db, request_id_of
from timebank.http.idempotency import execute_write
from timebank.http.pagination import decode_cursor, next_cursor, page_limit
from timebank.http.responses import problems, write_response
from timebank.http.types import Cursor, Limit, ShortText, require_zone
from timebank.ledger.routes import IdempotencyKey
from timebank.services import service
from timebank.services.models import (
    ServiceRequest,
    ServiceRequestAssign,
    ServiceRequestCheckIn,
    ServiceRequestConfirm,
    ServiceRequestCreate,
    ServiceRequestPage,
    ServiceRequestReason,
    ServiceRequestReport,
    ServiceRequestStatus,
    ServiceType,
    ServiceTypeCode,
    ServiceTypeCreate,
    ServiceTypePage,
    ServiceTypeReplace,
)

# --- service types -------------------------------------------------------------------------------


@get(
    "/v1/communities/{slug:str}/service-types",
    responses=problems("not_found"),
    summary="A community's service types",
)
async def list_service_types(slug: FromPath[str], db: Db, principal: Caller) -> ServiceTypePage:
    """Everyone of the community (and admins, auditors of all) reads them; retired ones say active false."""
    community = await communities.get_visible(db, principal, slug)
    return ServiceTypePage(items=await service.list_service_types(db, community.id), next_cursor=None)


@post(
    "/v1/communities/{slug:str}/service-types",
    status_code=201,
    responses=problems("forbidden", "not_found", "service_type_exists", body=True, keyed=True),
    summary="Add a service type (admin, coordinator)",
)
async def create_service_type(
    slug: FromPath[str],
    data: JSONBody[ServiceTypeCreate],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[ServiceType]:
    result = await execute_write(
        db, request, principal, "create_service_type", "service_type", slug, data,
        slug, data.code, data.name, data.default_minutes,
    )  # fmt: skip
    response = write_response(result, ServiceType)
    response.headers["Location"] = f"/v1/communities/{slug}/service-types"
    return response


@put(
    "/v1/communities/{slug:str}/service-types/{code:str}",
    responses=problems("forbidden", "not_found", body=True),
    summary="Change a service type: name, default minutes, active (admin, coordinator)",
)
async def update_service_type(
    slug: FromPath[str],
    code: FromPath[ServiceTypeCode],
    data: JSONBody[ServiceTypeReplace],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
) -> ServiceType:
    """Every field is required. A retired type (active false) keeps its requests but takes no new ones."""
    return await service.update_service_type(db, principal, request_id_of(request), slug, code, data)


# --- service requests ----------------------------------------------------------------------------

_STEP_PROBLEMS = ("forbidden", "not_found", "invalid_transition")


@post(
    "/v1/service-requests",
    status_code=201,
    responses=problems(
        "forbidden",
        "not_found",
        "unknown_service_type",
        "amount_out_of_range",
        "amount_not_multiple_of_unit",
        "invalid_schedule",
        "insufficient_balance",
        "not_eligible",
        body=True,
        keyed=True,
    ),
    summary="Ask for a service (a resident for itself; a coordinator for any member)",
)
async def create_service_request(
    data: JSONBody[ServiceRequestCreate],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[ServiceRequest]:
    """`own`: the member's hours are held (until 14 days after scheduled_at); `community` and `pool`
    (coordinators only): the provider is credited from issuance, or the pool's hours are held."""
    require_zone(scheduled_at=data.scheduled_at)
    result = await execute_write(
        db, request, principal, "create_service_request", "service_request", "", data,
        data.member_id, data.service_type, data.minutes, data.scheduled_at, data.funding, data.description,
    )  # fmt: skip
    return write_response(result, ServiceRequest, "/v1/service-requests/{id}")


@post(
    "/v1/service-requests/{request_id:uuid}/assign",
    status_code=200,
    responses=problems(*_STEP_PROBLEMS, "not_a_volunteer", "same_account", "not_eligible", body=True, keyed=True),
    summary="Claim a request (a volunteer, `{}`) or assign it to a provider (a coordinator)",
)
async def assign_service_request(
    request_id: FromPath[uuid.UUID],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    data: JSONBody[ServiceRequestAssign | None] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response[ServiceRequest]:
    """Two volunteers racing for one request: one wins, the other gets 409 invalid_transition."""
    body = data or ServiceRequestAssign()
    result = await execute_write(
        db, request, principal, "assign_service_request", "service_request_assign", request_id, body,
        request_id, body.provider_member_id,
    )  # fmt: skip
    return write_response(result, ServiceRequest)


@post(
    "/v1/service-requests/{request_id:uuid}/check-in",
    status_code=200,
    responses=problems(*_STEP_PROBLEMS, body=True, keyed=True),
    summary="Check in: the work begins (the provider, a coordinator)",
)
async def check_in_service_request(
    request_id: FromPath[uuid.UUID],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    data: JSONBody[ServiceRequestCheckIn | None] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response[ServiceRequest]:
    """The hold is extended (to a year from now) so that work done is never left unpaid."""
    result = await execute_write(
        db, request, principal, "check_in_service_request", "service_request_check_in", request_id, None, request_id
    )
    return write_response(result, ServiceRequest)


@post(
    "/v1/service-requests/{request_id:uuid}/report",
    status_code=200,
    responses=problems(
        *_STEP_PROBLEMS,
        "amount_out_of_range",
        "amount_not_multiple_of_unit",
        "capture_exceeds_hold",
        body=True,
        keyed=True,
    ),
    summary="Report the minutes worked (the provider, a coordinator)",
)
async def report_service_request(
    request_id: FromPath[uuid.UUID],
    data: JSONBody[ServiceRequestReport],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[ServiceRequest]:
    result = await execute_write(
        db, request, principal, "report_service_request", "service_request_report", request_id, data,
        request_id, data.minutes,
    )  # fmt: skip
    return write_response(result, ServiceRequest)


@post(
    "/v1/service-requests/{request_id:uuid}/confirm",
    status_code=200,
    responses=problems(
        *_STEP_PROBLEMS,
        "amount_out_of_range",
        "amount_not_multiple_of_unit",
        "capture_exceeds_hold",
        "balance_cap_exceeded",
        "not_a_volunteer",
        "hold_not_pending",
        body=True,
        keyed=True,
    ),
    summary="Confirm and rate the service: the hours move (the member served, a coordinator)",
)
async def confirm_service_request(
    request_id: FromPath[uuid.UUID],
    data: JSONBody[ServiceRequestConfirm],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[ServiceRequest]:
    """In the same database transaction: `own`/`pool` capture the hold to the provider (the rest is
    released), `community` credits the provider from issuance; the transaction names the request
    (`service_request_id`). `minutes` (coordinators only) overrides the report."""
    result = await execute_write(
        db, request, principal, "confirm_service_request", "service_request_confirm", request_id, data,
        request_id, data.rating, data.comment, data.minutes,
    )  # fmt: skip
    return write_response(result, ServiceRequest)


@post(
    "/v1/service-requests/{request_id:uuid}/dispute",
    status_code=200,
    responses=problems(*_STEP_PROBLEMS, body=True, keyed=True),
    summary="Dispute a reported service (the member served, a coordinator)",
)
async def dispute_service_request(
    request_id: FromPath[uuid.UUID],
    data: JSONBody[ServiceRequestReason],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[ServiceRequest]:
    result = await execute_write(
        db, request, principal, "dispute_service_request", "service_request_dispute", request_id, data,
        request_id, data.reason,
    )  # fmt: skip
    return write_response(result, ServiceRequest)


@post(
    "/v1/service-requests/{request_id:uuid}/cancel",
    status_code=200,
    responses=problems(*_STEP_PROBLEMS, body=True, keyed=True),
    summary="Cancel a request, or withdraw from it (the provider: it is open again)",
)
async def cancel_service_request(
    request_id: FromPath[uuid.UUID],
    data: JSONBody[ServiceRequestReason],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    idempotency_key: IdempotencyKey = None,
) -> Response[ServiceRequest]:
    """The member served, whoever asked or a coordinator cancel (a hold is released in the same
    transaction; a disputed request only by a coordinator); the provider withdraws."""
    result = await execute_write(
        db, request, principal, "cancel_service_request", "service_request_cancel", request_id, data,
        request_id, data.reason,
    )  # fmt: skip
    return write_response(result, ServiceRequest)


@get(
    "/v1/service-requests/{request_id:uuid}",
    responses=problems("forbidden", "not_found"),
    summary="Get a service request",
)
async def get_service_request(request_id: FromPath[uuid.UUID], db: Db, principal: Caller) -> ServiceRequest:
    return await service.get_service_request(db, principal, request_id)


@get(
    "/v1/communities/{slug:str}/service-requests",
    responses=problems("invalid_request", "not_found", "invalid_cursor"),
    summary="A community's service requests the caller may read, newest first",
)
async def list_service_requests(
    slug: FromPath[str],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    status: FromQuery[ServiceRequestStatus | None] = None,
    grid: FromQuery[ShortText | None] = None,
    member_id: FromQuery[uuid.UUID | None] = None,
    provider_member_id: FromQuery[uuid.UUID | None] = None,
    service_type: FromQuery[ServiceTypeCode | None] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> ServiceRequestPage:
    """Staff and auditors see all; a volunteer the open ones and those it provides; a member those
    it is served by or asked for. Filters narrow that further."""
    community = await communities.get_visible(db, principal, slug)
    settings = request.app.state.settings
    size = page_limit(limit, settings.page_size_default, settings.page_size_max)
    filters = {"grid": grid, "member_id": member_id, "provider_member_id": provider_member_id,
               "service_type": service_type}  # fmt: skip
    items, rows = await service.list_service_requests(
        db, principal, community.id, filters, status, decode_cursor(cursor), size
    )
    return ServiceRequestPage(items=items, next_cursor=next_cursor(rows, size, "seq"))


router = Router(
    path="/",
    route_handlers=[
        list_service_types,
        create_service_type,
        update_service_type,
        create_service_request,
        assign_service_request,
        check_in_service_request,
        report_service_request,
        confirm_service_request,
        dispute_service_request,
        cancel_service_request,
        get_service_request,
        list_service_requests,
    ],
    tags=["services"],
)
