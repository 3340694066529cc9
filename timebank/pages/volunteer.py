"""/requests and /tasks: a volunteer finds open requests of its community and claims one; then,
for the requests it provides, checks in, reports the minutes worked, or withdraws."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from markupsafe import Markup

from timebank.communities import service as communities
from timebank.pages.common import database_of, form_field, render
from timebank.pages.member import Signed, not_found, parse_id, posted, posted_about, signed
from timebank.pages.refusals import sentence
from timebank.pages.request_views import card, requests_of
from timebank.pages.results import done, moment
from timebank.pages.results import sentence as result_sentence
from timebank.pages.views import N_
from timebank.pages.words import minutes_in_words
from timebank.pages.writes import act, key_of, new_key
from timebank.services.models import (
    ServiceRequest,
    ServiceRequestAssign,
    ServiceRequestReason,
    ServiceRequestReport,
    ServiceRequestStatus,
)

MY_TASKS: tuple[ServiceRequestStatus, ...] = ("assigned", "in_progress", "reported", "disputed")


async def _open_page(
    request: Request[Any, Any, State], who: Signed, problems: dict[str, str] | None = None, status: int = 200
) -> Response[Any]:
    db = database_of(request)
    time_zone = await communities.time_zone_of(db, who.community_id)
    found = [r for r in await requests_of(db, who, None, "open") if r.member_id != who.member.id]
    cards = [(card(r, time_zone), new_key()) for r in sorted(found, key=lambda r: r.scheduled_at)]
    return render(request, "requests.html", status, cards=cards, problems=problems or {}, **who.page())


@get("/requests", include_in_schema=False)
async def open_requests(request: Request[Any, Any, State]) -> Response[Any]:
    who = await signed(request, "volunteer")
    if not isinstance(who, Signed):
        return who
    return await _open_page(request, who)


async def _tasks_page(
    request: Request[Any, Any, State], who: Signed, problems: dict[str, str] | None = None, status: int = 200,
    typed: dict[str, str] | None = None,
) -> Response[Any]:  # fmt: skip
    db = database_of(request)
    time_zone = await communities.time_zone_of(db, who.community_id)
    found = await requests_of(db, who, "provider_member_id", *MY_TASKS)
    cards = [(card(r, time_zone), new_key(), new_key()) for r in sorted(found, key=lambda r: r.scheduled_at)]
    return render(request, "tasks.html", status, cards=cards, problems=problems or {}, typed=typed or {}, **who.page())


@get("/tasks", include_in_schema=False)
async def tasks(request: Request[Any, Any, State]) -> Response[Any]:
    who = await signed(request, "volunteer")
    if not isinstance(who, Signed):
        return who
    return await _tasks_page(request, who)


@post("/requests/{request_id:str}/claim", include_in_schema=False, status_code=200)
async def claim(request: Request[Any, Any, State], request_id: FromPath[str]) -> Response[Any]:
    """The SQL operation decides (another volunteer may have been quicker: said in words on /requests)."""
    sent = await posted(request, "volunteer")
    if not isinstance(sent, tuple):
        return sent
    who, form = sent
    target = parse_id(request_id)
    if target is None:
        return not_found(request, who)
    key = key_of(form)
    if key is None:
        return await _open_page(request, who, {"general": sentence("idempotency_key_reused")}, 400)
    body = ServiceRequestAssign()
    outcome = await act(
        request, who.principal, key, "assign_service_request", "service_request_assign", target, body,
        target, body.provider_member_id,
    )  # fmt: skip
    if outcome.code in ("not_found", "forbidden"):
        return not_found(request, who)
    if outcome.code is not None:
        return await _open_page(request, who, {"general": sentence(outcome.code)}, outcome.status)
    claimed: ServiceRequest = outcome.value(ServiceRequest)
    time_zone = await communities.time_zone_of(database_of(request), who.community_id)
    return done(
        request, who, N_("Thank you for helping"),
        result_sentence(
            N_("You will help %(name)s on %(when)s."), name=claimed.member_name,
            when=moment(claimed.scheduled_at, time_zone),
        ),
        "/tasks", N_("See my tasks"),
    )  # fmt: skip


async def _step(
    request: Request[Any, Any, State], request_id: str, function: str, operation: str, heading: str,
    said: Callable[[ServiceRequest], Markup], next_page: tuple[str, str] = ("/tasks", N_("See my tasks")),
    field: str = "step",
) -> Response[Any]:  # fmt: skip
    """One step on a request the volunteer provides, then the result page: `heading`, and `said` of the
    request as the step left it. A refusal is said on /tasks next to the request."""
    sent = await posted_about(request, "volunteer", request_id)
    if not isinstance(sent, tuple):
        return sent
    who, form, found = sent
    key = key_of(form)
    minutes_text = form_field(form, "minutes")
    typed = {str(found.id): minutes_text}
    problem_key = f"{found.id}-{field}"
    if key is None:
        return await _tasks_page(request, who, {problem_key: sentence("idempotency_key_reused")}, 400, typed)
    if operation == "service_request_report":
        if not (minutes_text.isdigit() and 1 <= int(minutes_text) <= 100000):
            return await _tasks_page(request, who, {problem_key: sentence("no_minutes")}, 400, typed)
        report = ServiceRequestReport(minutes=int(minutes_text))
        outcome = await act(
            request, who.principal, key, function, operation, found.id, report, found.id, report.minutes
        )
    elif operation == "service_request_cancel":
        reason = ServiceRequestReason(reason="withdrawn by the volunteer on the pages")
        outcome = await act(request, who.principal, key, function, operation, found.id, reason, found.id, reason.reason)
    else:
        outcome = await act(request, who.principal, key, function, operation, found.id, None, found.id)
    if outcome.code is not None:
        community = await communities.get_by_id(database_of(request), who.community_id)
        words = sentence(outcome.code, community.policy.unit_minutes)
        return await _tasks_page(request, who, {problem_key: words}, outcome.status, typed)
    return done(request, who, heading, said(outcome.value(ServiceRequest)), *next_page)


@post("/tasks/{request_id:str}/check-in", include_in_schema=False, status_code=200)
async def check_in(request: Request[Any, Any, State], request_id: FromPath[str]) -> Response[Any]:
    return await _step(
        request, request_id, "check_in_service_request", "service_request_check_in", N_("Checked in"),
        lambda checked_in: result_sentence(
            N_("You are with %(name)s now. When you are done, report the minutes you worked."),
            name=checked_in.member_name,
        ),
    )  # fmt: skip


@post("/tasks/{request_id:str}/report", include_in_schema=False, status_code=200)
async def report(request: Request[Any, Any, State], request_id: FromPath[str]) -> Response[Any]:
    return await _step(
        request, request_id, "report_service_request", "service_request_report", N_("Reported"),
        lambda reported: result_sentence(
            N_("You reported %(amount)s for %(name)s. The hours are yours when %(name)s confirms."),
            amount=minutes_in_words(reported.reported_minutes or 0), name=reported.member_name,
        ),
        field="minutes",
    )  # fmt: skip


@post("/tasks/{request_id:str}/withdraw", include_in_schema=False, status_code=200)
async def withdraw(request: Request[Any, Any, State], request_id: FromPath[str]) -> Response[Any]:
    return await _step(
        request, request_id, "cancel_service_request", "service_request_cancel", N_("Withdrawn"),
        lambda withdrawn: result_sentence(
            N_("You no longer help %(name)s with this request. Another volunteer can take it."),
            name=withdrawn.member_name,
        ),
        ("/requests", N_("Find requests to help with")),
    )  # fmt: skip
