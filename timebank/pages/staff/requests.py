"""/staff/requests: every request of the community with filters; one request's page, where the
coordinator assigns it, confirms it (settling a dispute) or cancels it on someone's behalf."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect

from timebank.errors import DomainError
from timebank.http.idempotency import ReplayedProblemError, execute_write
from timebank.members import service as members
from timebank.pages.common import database_of, render
from timebank.pages.staff.common import (
    Staff,
    checked_form,
    form_key,
    member_by_number,
    new_key,
    not_found,
    refusal,
    staff_of,
    staff_reading,
    text,
    visible,
)
from timebank.pages.views import N_, REQUEST_STATUSES, request_view, service_name
from timebank.services import service as services
from timebank.services.models import (
    ServiceRequest,
    ServiceRequestAssign,
    ServiceRequestConfirm,
    ServiceRequestReason,
)

LIST_LIMIT = 50
VOLUNTEERS_LISTED = 200
STEP_ERRORS = (DomainError, ReplayedProblemError, msgspec.ValidationError)
DONE = {
    "assign": N_("The volunteer is assigned."),
    "confirm": N_("Confirmed: the hours have moved."),
    "cancel": N_("The request is cancelled."),
}


@get("/staff/requests", include_in_schema=False)
async def requests_page(request: Request[Any, Any, State]) -> Response[Any]:
    staff = await staff_of(request)
    if isinstance(staff, Response):
        return staff
    db = database_of(request)
    query = dict(request.query_params)
    status = text(query, "status", 20)
    status = status if status in REQUEST_STATUSES else ""
    types = await services.list_service_types(db, staff.community_id)
    service_type = text(query, "service_type", 40)
    service_type = service_type if service_type in {t.code for t in types} else ""
    filters: dict[str, Any] = {"grid": text(query, "grid", 100) or None, "service_type": service_type or None}
    number = text(query, "member", 32)
    member = await member_by_number(db, staff, number) if number else None
    if member is not None:
        filters["member_id"] = member.id
    items: list[ServiceRequest] = []
    if not number or member is not None:
        items, _ = await services.list_service_requests(
            db, staff.principal, staff.community_id, filters, status or None, None, LIST_LIMIT  # type: ignore[arg-type]
        )  # fmt: skip
    return render(
        request, "staff/requests.html", section="requests",
        items=[(r, request_view(r, staff.time_zone)) for r in items],
        statuses=REQUEST_STATUSES, types=[(t, service_name(t.code)) for t in types],
        chosen={"status": status, "service_type": service_type, "grid": filters["grid"] or "", "member": number},
        **staff.context,
    )  # fmt: skip


async def _request_page(request: Request[Any, Any, State], staff: Staff, found: ServiceRequest, status: int = 200,
                        **context: Any) -> Response[Any]:  # fmt: skip
    context = {"problem": None, "problem_form": None, "form": {}} | context
    volunteers: list[Any] = []
    if found.status in ("open", "assigned"):
        listed, rows = await members.list_members(
            database_of(request), staff.community_id, "volunteer", None, None, None, VOLUNTEERS_LISTED
        )
        # A long list is no help: past it, the coordinator types the volunteer's number.
        volunteers = [m for m in listed if m.id != found.member_id] if len(rows) <= VOLUNTEERS_LISTED else []
    done = DONE.get(request.query_params.get("done") or "")
    return render(
        request, "staff/request.html", status, section="requests", r=found, v=request_view(found, staff.time_zone),
        keys={n: new_key() for n in ("assign", "confirm", "cancel")}, done=done, volunteers=volunteers,
        **staff.context, **context,
    )  # fmt: skip


@get("/staff/requests/{request_id:uuid}", include_in_schema=False)
async def request_page(request: Request[Any, Any, State], request_id: FromPath[uuid.UUID]) -> Response[Any]:
    seen = await staff_reading(request, services.get_service_request, request_id)
    if isinstance(seen, Response):
        return seen
    staff, found = seen
    return await _request_page(request, staff, found)


@post("/staff/requests/{request_id:uuid}/{step:str}", include_in_schema=False, status_code=303)
async def request_step(
    request: Request[Any, Any, State], request_id: FromPath[uuid.UUID], step: FromPath[str]
) -> Response[Any]:
    """Assign, confirm or cancel, as POST /v1/service-requests/{id}/{step} does for a coordinator."""
    staff = await staff_of(request)
    if isinstance(staff, Response):
        return staff
    if step not in DONE:
        return not_found(request)
    form = await checked_form(request)
    if form is None:
        return render(request, "refused.html", 403)
    found = await visible(request, staff, services.get_service_request, request_id)
    if found is None:
        return not_found(request)
    db = database_of(request)
    key = form_key(form)
    try:
        if step == "assign":
            provider = await member_by_number(db, staff, text(form, "provider_no", 32))
            if provider is None:
                named = [{"field": "$.provider_no", "message": "no member with this number"}]
                raise DomainError("no such member", code="not_a_member", errors=named)
            body: Any = ServiceRequestAssign(provider_member_id=provider.id)
            args: tuple[Any, ...] = (request_id, provider.id)
            operation = "service_request_assign"
        elif step == "confirm":
            minutes = text(form, "minutes", 6)
            body = msgspec.convert({"rating": text(form, "rating", 1) or "0", "comment": text(form, "comment") or None,
                                    "minutes": int(minutes) if minutes.isdigit() else None},
                                   ServiceRequestConfirm, strict=False)  # fmt: skip
            args = (request_id, body.rating, body.comment, body.minutes)
            operation = "service_request_confirm"
        else:
            body = msgspec.convert({"reason": text(form, "reason")}, ServiceRequestReason, strict=False)
            args = (request_id, body.reason)
            operation = "service_request_cancel"
        function = {"assign": "assign_service_request", "confirm": "confirm_service_request",
                    "cancel": "cancel_service_request"}[step]  # fmt: skip
        await execute_write(db, request, staff.principal, function, operation, request_id, body, *args, key=key)
    except STEP_ERRORS as error:
        shown = {n: text(form, n) for n in form if n not in ("csrf_token", "key")}
        return await _request_page(request, staff, found, 422, problem=refusal(error), problem_form=step, form=shown)
    return Redirect(f"/staff/requests/{request_id}?done={step}", status_code=303)
