"""/ask: a resident asks for help. One big button per service type; then the day, the time and the
minutes (the type's usual minutes filled in); then a confirmation step; then a large result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, Response, get, post
from litestar.datastructures import State

from timebank.communities import service as communities
from timebank.pages.common import database_of, form_field, render
from timebank.pages.member import Signed, posted, signed
from timebank.pages.refusals import sentence
from timebank.pages.results import done, moment
from timebank.pages.results import sentence as result_sentence
from timebank.pages.views import N_, service_name
from timebank.pages.words import day_in_words, minutes_in_words, moment_in_words
from timebank.pages.writes import act, key_of, new_key
from timebank.services import service as services
from timebank.services.models import ServiceRequest, ServiceRequestCreate, ServiceType

FUNDINGS = ("own", "community", "pool")
# Which field a refusal of the service is said next to.
FIELD_OF = {"invalid_schedule": "day", "unknown_service_type": "service"}


@dataclass
class AskForm:
    """The form as typed (kept to draw it again), and what was wrong with it."""

    service_type: str = ""
    day: str = ""
    time: str = "09:00"
    minutes: str = ""
    funding: str = "own"
    problems: dict[str, str] | None = None


async def _types(request: Request[Any, Any, State], who: Signed) -> dict[str, ServiceType]:
    found = await services.list_service_types(database_of(request), who.community_id)
    return {t.code: t for t in found if t.active}


def _may_choose_funding(who: Signed) -> bool:
    """Only a coordinator may book a service paid by the community or the pool (the API's rule)."""
    return "coordinator" in who.member.roles


async def _draw(
    request: Request[Any, Any, State], who: Signed, types: dict[str, ServiceType], form: AskForm, status: int = 200
) -> Response[Any]:
    chosen = types.get(form.service_type)
    time_zone = await communities.time_zone_of(database_of(request), who.community_id)
    tomorrow = datetime.now(ZoneInfo(time_zone)).date() + timedelta(days=1)
    return render(
        request, "ask.html", status, tomorrow=day_in_words(tomorrow),
        types=[(t.code, service_name(t.code)) for t in types.values()],
        chosen=service_name(chosen.code) if chosen else None, form=form, problems=form.problems or {},
        fundings=FUNDINGS if _may_choose_funding(who) else (), **who.page(),
    )  # fmt: skip


@get("/ask", include_in_schema=False)
async def ask_page(request: Request[Any, Any, State]) -> Response[Any]:
    who = await signed(request, "resident")
    if not isinstance(who, Signed):
        return who
    types = await _types(request, who)
    chosen = types.get(request.query_params.get("type") or "")
    form = AskForm()
    if chosen is not None:
        time_zone = await communities.time_zone_of(database_of(request), who.community_id)
        tomorrow = datetime.now(ZoneInfo(time_zone)).date() + timedelta(days=1)
        form = AskForm(chosen.code, tomorrow.isoformat(), "09:00", str(chosen.default_minutes))
    return await _draw(request, who, types, form)


def _read(form: Any, types: dict[str, ServiceType]) -> tuple[AskForm, dict[str, str]]:
    typed = AskForm(
        service_type=form_field(form, "service_type"), day=form_field(form, "day"), time=form_field(form, "time"),
        minutes=form_field(form, "minutes"), funding=form_field(form, "funding") or "own",
    )  # fmt: skip
    problems: dict[str, str] = {}
    if typed.service_type not in types:
        problems["service"] = "no_service"
    try:
        date.fromisoformat(typed.day)
    except ValueError:
        problems["day"] = "no_day"
    try:
        time.fromisoformat(typed.time)
    except ValueError:
        problems["time"] = "no_time"
    if not (typed.minutes.isdigit() and 1 <= int(typed.minutes) <= 100000):
        problems["minutes"] = "no_minutes"
    if typed.funding not in FUNDINGS:
        typed.funding = "own"
    return typed, problems


@post("/ask", include_in_schema=False, status_code=200)
async def ask(request: Request[Any, Any, State]) -> Response[Any]:
    """Without a key: check the form and draw the confirmation step (with a new key). With the key
    of that step: ask, once, however often the confirmation is sent."""
    sent = await posted(request, "resident")
    if not isinstance(sent, tuple):
        return sent
    who, form = sent
    types = await _types(request, who)
    typed, problems = _read(form, types)
    if problems:
        typed.problems = {field: sentence(code) for field, code in problems.items()}
        return await _draw(request, who, types, typed, 400)
    db = database_of(request)
    community = await communities.get_by_id(db, who.community_id)
    time_zone = community.policy.time_zone
    at = datetime.combine(date.fromisoformat(typed.day), time.fromisoformat(typed.time), ZoneInfo(time_zone))
    funding = typed.funding if _may_choose_funding(who) else "own"
    body = ServiceRequestCreate(
        member_id=who.member.id, service_type=typed.service_type, scheduled_at=at,
        funding=funding, minutes=int(typed.minutes),  # type: ignore[arg-type]
    )  # fmt: skip
    key = key_of(form)
    if key is None:
        return render(
            request, "ask_confirm.html", form=typed, service=service_name(typed.service_type),
            when=moment_in_words(at, time_zone), amount=minutes_in_words(int(typed.minutes)),
            funding=funding, key=new_key(), **who.page(),
        )  # fmt: skip
    outcome = await act(
        request, who.principal, key, "create_service_request", "service_request", "", body,
        body.member_id, body.service_type, body.minutes, body.scheduled_at, body.funding, body.description,
    )  # fmt: skip
    if outcome.code is not None:
        field = FIELD_OF.get(outcome.code, "minutes")
        typed.problems = {field: sentence(outcome.code, community.policy.unit_minutes)}
        return await _draw(request, who, types, typed, outcome.status)
    made: ServiceRequest = outcome.value(ServiceRequest)
    service = service_name(made.service_type)
    return done(
        request, who, N_("Your request is in"),
        result_sentence(
            N_("You asked for %(service)s on %(when)s, %(minutes)s."),
            service=service.text, when=moment(made.scheduled_at, time_zone),
            minutes=minutes_in_words(made.minutes),
        ),
        "/my-requests", N_("See my requests"),
        also=N_("The hours are set aside now and paid only when you confirm the service."),
    )  # fmt: skip
