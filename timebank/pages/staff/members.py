"""/staff/members: search, register, a member's page (edit with a reason, PIN, relatives, passbook,
sign-in card, a service asked on the member's behalf) and its statement with corrections."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import structlog
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect

from timebank.errors import DomainError
from timebank.http.context import request_id_of
from timebank.http.idempotency import ReplayedProblemError, execute_write
from timebank.http.types import require_calendar_dates, require_zone
from timebank.ledger import service as ledger
from timebank.members import cards, pins, relatives
from timebank.members import service as members
from timebank.members.models import Member, MemberChange, MemberCreate, PinSet, RelativeCreate
from timebank.pages.common import database_of, render
from timebank.pages.staff.common import (
    Refusal,
    Staff,
    form_key,
    member_by_number,
    new_key,
    not_found,
    refusal,
    staff_form,
    staff_of,
    staff_reading,
    text,
    visible,
)
from timebank.pages.views import N_, entry_view, service_name
from timebank.passbook.fonts import FontMissingError
from timebank.passbook.routes import passbook_response
from timebank.passbook.service import print_passbook
from timebank.services import service as services
from timebank.services.models import ServiceRequestCreate

log = structlog.get_logger(__name__)

SEARCH_LIMIT = 30
HISTORY_LIMIT = 30
ROLES = {"volunteer": N_("Volunteer"), "resident": N_("Resident"), "coordinator": N_("Coordinator"),
         "auditor": N_("Auditor")}  # fmt: skip
RELATIONS = {
    "parent": N_("Parent"), "child": N_("Child"), "spouse": N_("Husband or wife"), "sibling": N_("Brother or sister"),
    "grandparent": N_("Grandparent"), "grandchild": N_("Grandchild"), "other": N_("Other relative"),
}  # fmt: skip
FUNDINGS = {
    "own": N_("The member's own hours"),
    "community": N_("The community (the volunteer is credited)"),
    "pool": N_("The community pool of donated hours"),
}
DONE = {
    "registered": N_("The member is registered. Set a PIN next, so they can sign in."),
    "changed": N_("The changes are saved, with the reason."),
    "pin": N_("The new PIN is set. The member can sign in with it now."),
    "relative": N_("The relative is linked, on both sides."),
    "asked": N_("The request is made; volunteers can see it now."),
}
MEMBER_ERRORS = (DomainError, ReplayedProblemError, msgspec.ValidationError)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@get("/staff/members", include_in_schema=False)
async def members_page(request: Request[Any, Any, State]) -> Response[Any]:
    staff = await staff_of(request)
    if isinstance(staff, Response):
        return staff
    query = text(dict(request.query_params), "q", 100)
    found, _ = await members.list_members(
        database_of(request), staff.community_id, None, None, query or None, None, SEARCH_LIMIT
    )
    return render(request, "staff/members.html", section="members", query=query, found=found, roles=ROLES,
                  **staff.context)  # fmt: skip


def _register_page(request: Request[Any, Any, State], staff: Staff, form: dict[str, Any],
                   problem: Refusal | None = None) -> Response[Any]:  # fmt: skip
    return render(request, "staff/register.html", 422 if problem else 200, section="members", form=form,
                  problem=problem, **staff.context)  # fmt: skip


@get("/staff/members/new", include_in_schema=False)
async def register_page(request: Request[Any, Any, State]) -> Response[Any]:
    staff = await staff_of(request)
    if isinstance(staff, Response):
        return staff
    return _register_page(request, staff, {"roles": ["resident"]})


@post("/staff/members/new", include_in_schema=False, status_code=303)
async def register(request: Request[Any, Any, State]) -> Response[Any]:
    signed = await staff_form(request)
    if isinstance(signed, Response):
        return signed
    staff, form = signed
    raw = await request.form()
    values: dict[str, Any] = {name: text(form, name, 100) for name in ("display_name", "grid", "phone", "birth_date")}
    values["roles"] = [r for r in raw.getall("roles", []) if r in ("volunteer", "resident")]
    body = {"display_name": values["display_name"], "roles": values["roles"], "grid": values["grid"] or None,
            "phone": values["phone"] or None, "birth_date": values["birth_date"] or None}  # fmt: skip
    try:
        data = msgspec.convert(body, MemberCreate, strict=False)
        require_calendar_dates(birth_date=data.birth_date)
        member = await members.create_member(database_of(request), staff.principal, request_id_of(request),
                                             staff.slug, data)  # fmt: skip
    except MEMBER_ERRORS as error:
        return _register_page(request, staff, values, refusal(error))
    return Redirect(f"/staff/members/{member.id}?done=registered", status_code=303)


async def _member_page(
    request: Request[Any, Any, State], staff: Staff, member: Member, status: int = 200, **context: Any
) -> Response[Any]:
    db = database_of(request)
    account = await ledger.get_account(db, staff.principal, member.account_id)
    kin = await relatives.listed(db, staff.principal, member.id)
    issued = await cards.card_issued_at(db, member.id)
    done = request.query_params.get("done")
    types = [t for t in await services.list_service_types(db, staff.community_id) if t.active]
    context = {"problem": None, "problem_form": None, "form": {}} | context
    return render(
        request, "staff/member.html", status, section="members", member=member, account=account, relatives=kin,
        card_issued=issued is not None, done=DONE.get(done or ""), roles=ROLES, relations=RELATIONS,
        fundings=FUNDINGS,
        service_types=[(t, service_name(t.code)) for t in types], keys={n: new_key() for n in FORMS},
        **staff.context, **context,
    )  # fmt: skip


FORMS = ("edit", "pin", "relative", "ask")


@get("/staff/members/{member_id:uuid}", include_in_schema=False)
async def member_page(request: Request[Any, Any, State], member_id: FromPath[uuid.UUID]) -> Response[Any]:
    seen = await staff_reading(request, members.get_visible, member_id)
    if isinstance(seen, Response):
        return seen
    staff, member = seen
    return await _member_page(request, staff, member)


async def _member_action(request: Request[Any, Any, State], member_id: uuid.UUID, which: str) -> Response[Any]:
    """One of the member page's forms: check it, call the service, then show the page again."""
    signed = await staff_form(request)
    if isinstance(signed, Response):
        return signed
    staff, form = signed
    member = await visible(request, staff, members.get_visible, member_id)
    if member is None:
        return not_found(request)
    key = form_key(form)
    try:
        await ACTIONS[which](request, staff, member, form, key)
    except MEMBER_ERRORS as error:
        shown = {n: text(form, n) for n in form if n not in ("pin", "csrf_token", "key")}
        return await _member_page(request, staff, member, 422, problem=refusal(error), problem_form=which, form=shown)
    done = {"edit": "changed", "pin": "pin", "relative": "relative", "ask": "asked"}[which]
    return Redirect(f"/staff/members/{member.id}?done={done}", status_code=303)


async def _edit(request: Request[Any, Any, State], staff: Staff, member: Member, form: dict[str, Any],
                key: str) -> None:  # fmt: skip
    raw = await request.form()
    given: dict[str, Any] = {"reason": text(form, "reason")}
    for name, now in (("display_name", member.display_name), ("grid", member.grid or ""),
                      ("phone", member.phone or ""), ("birth_date", str(member.birth_date or ""))):  # fmt: skip
        value = text(form, name, 100)
        if value != now:
            given[name] = value or None
    roles = [r for r in raw.getall("roles", []) if r in ("volunteer", "resident")]
    kept = [r for r in member.roles if r in ("coordinator", "auditor")]
    if sorted(roles + kept) != sorted(member.roles):
        given["roles"] = roles + kept
    data = msgspec.convert(given, MemberChange, strict=False)
    if isinstance(data.birth_date, date):
        require_calendar_dates(birth_date=data.birth_date)
    await members.change_member(database_of(request), request, staff.principal, member.id, data, key=key)


async def _pin(request: Request[Any, Any, State], staff: Staff, member: Member, form: dict[str, Any],
               key: str) -> None:  # fmt: skip
    data = msgspec.convert({"pin": text(form, "pin", 20)}, PinSet, strict=False)
    await pins.set_pin(database_of(request), request, staff.principal, member.id, data, key=key)


async def _relative(request: Request[Any, Any, State], staff: Staff, member: Member, form: dict[str, Any],
                    key: str) -> None:  # fmt: skip
    db = database_of(request)
    other = await member_by_number(db, staff, text(form, "relative_no", 32))
    if other is None:
        raise DomainError("no such member", code="not_a_member",
                          errors=[{"field": "$.relative_no", "message": "no member with this number"}])  # fmt: skip
    data = msgspec.convert({"relative_member_id": str(other.id), "relation": text(form, "relation", 20)},
                           RelativeCreate, strict=False)  # fmt: skip
    await relatives.add(db, request, staff.principal, member.id, data, key=key)


async def _ask(request: Request[Any, Any, State], staff: Staff, member: Member, form: dict[str, Any],
               key: str) -> None:  # fmt: skip
    """A service asked for the member (a resident without a phone), paid from the member's own hours."""
    try:
        day = datetime.strptime(text(form, "day", 10), "%Y-%m-%d").date()
        hour = time.fromisoformat(text(form, "time", 5))
    except ValueError:
        raise DomainError("no such date or time", code="invalid_schedule",
                          errors=[{"field": "$.day", "message": "a date and a time"}]) from None  # fmt: skip
    minutes = text(form, "minutes", 6)
    body = {
        "member_id": str(member.id), "service_type": text(form, "service_type", 40),
        "scheduled_at": datetime.combine(day, hour, ZoneInfo(staff.time_zone)).isoformat(),
        "funding": text(form, "funding", 20) or "own",
        "minutes": int(minutes) if minutes.isdigit() else None, "description": text(form, "description"),
    }  # fmt: skip
    data = msgspec.convert(body, ServiceRequestCreate, strict=False)
    require_zone(scheduled_at=data.scheduled_at)
    await execute_write(
        database_of(request), request, staff.principal, "create_service_request", "service_request", "",
        data, data.member_id, data.service_type, data.minutes, data.scheduled_at, data.funding, data.description,
        key=key,
    )  # fmt: skip


ACTIONS = {"edit": _edit, "pin": _pin, "relative": _relative, "ask": _ask}


@post("/staff/members/{member_id:uuid}/edit", include_in_schema=False, status_code=303)
async def edit_member(request: Request[Any, Any, State], member_id: FromPath[uuid.UUID]) -> Response[Any]:
    return await _member_action(request, member_id, "edit")


@post("/staff/members/{member_id:uuid}/pin", include_in_schema=False, status_code=303)
async def set_member_pin(request: Request[Any, Any, State], member_id: FromPath[uuid.UUID]) -> Response[Any]:
    return await _member_action(request, member_id, "pin")


@post("/staff/members/{member_id:uuid}/relatives", include_in_schema=False, status_code=303)
async def add_relative(request: Request[Any, Any, State], member_id: FromPath[uuid.UUID]) -> Response[Any]:
    return await _member_action(request, member_id, "relative")


@post("/staff/members/{member_id:uuid}/ask", include_in_schema=False, status_code=303)
async def ask_for_member(request: Request[Any, Any, State], member_id: FromPath[uuid.UUID]) -> Response[Any]:
    return await _member_action(request, member_id, "ask")


@get("/staff/members/{member_id:uuid}/passbook.pdf", include_in_schema=False)
async def member_passbook(request: Request[Any, Any, State], member_id: FromPath[uuid.UUID]) -> Response[Any]:
    """The member's passbook, as GET /v1/members/{id}/passbook.pdf draws it, for the signed-in coordinator."""
    seen = await staff_reading(request, members.get_visible, member_id)
    if isinstance(seen, Response):
        return seen
    staff, member = seen
    settings = request.app.state.settings
    try:
        printed = await print_passbook(database_of(request).run, member.id, None, None, settings.pdf_font)
    except FontMissingError as missing:
        log.warning("passbook_font_missing", detail=missing.detail)  # what to install, for whoever runs it
        return render(request, "staff/passbook_missing.html", 503, section="members", member=member, **staff.context)
    return passbook_response(printed)


@get("/staff/members/{member_id:uuid}/history", include_in_schema=False)
async def member_history(request: Request[Any, Any, State], member_id: FromPath[uuid.UUID]) -> Response[Any]:
    """The member's statement, newest first, each credit with a way to correct it."""
    seen = await staff_reading(request, members.get_visible, member_id)
    if isinstance(seen, Response):
        return seen
    staff, member = seen
    db = database_of(request)
    entries, _ = await ledger.list_entries(db, staff.principal, member.account_id, None, None, None, HISTORY_LIMIT)
    shown = [(e, entry_view(e, staff.time_zone)) for e in entries]
    return render(request, "staff/history.html", section="members", member=member, entries=shown, **staff.context)
