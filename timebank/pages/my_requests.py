"""/my-requests: a resident's own requests and their state; confirm a done service with 1–5 stars
and a comment (a confirmation step, then the hours move), dispute it, or cancel a request."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath

from timebank.communities import service as communities
from timebank.pages.common import database_of, form_field, render
from timebank.pages.member import Signed, not_found, posted_about, signed, visible_request
from timebank.pages.refusals import sentence
from timebank.pages.request_views import card, requests_of
from timebank.pages.results import done
from timebank.pages.results import sentence as result_sentence
from timebank.pages.views import N_
from timebank.pages.words import minutes_in_words
from timebank.pages.writes import act, key_of, new_key
from timebank.services.models import ServiceRequest, ServiceRequestConfirm, ServiceRequestReason

CANCELLABLE = ("open", "assigned")
# What waits for the resident comes first (a service to confirm), then what is coming, then the past.
ORDER = {"reported": 0, "open": 1, "assigned": 1, "in_progress": 1, "disputed": 2}
MAX_COMMENT = 500


@get("/my-requests", include_in_schema=False)
async def my_requests(request: Request[Any, Any, State]) -> Response[Any]:
    who = await signed(request, "resident")
    if not isinstance(who, Signed):
        return who
    db = database_of(request)
    time_zone = await communities.time_zone_of(db, who.community_id)
    found = sorted(await requests_of(db, who, "member_id"), key=lambda r: (ORDER.get(r.status, 9), r.scheduled_at))
    return render(request, "my_requests.html", cards=[card(r, time_zone) for r in found], **who.page())


async def _own(request: Request[Any, Any, State], who: Signed, request_id: str) -> ServiceRequest | None:
    found = await visible_request(request, who, request_id)
    return found if found is not None and found.member_id == who.member.id else None


async def _draw_one(
    request: Request[Any, Any, State], who: Signed, found: ServiceRequest, problems: dict[str, str] | None = None,
    status: int = 200, form: dict[str, str] | None = None,
) -> Response[Any]:  # fmt: skip
    time_zone = await communities.time_zone_of(database_of(request), who.community_id)
    return render(
        request, "my_request.html", status, r=card(found, time_zone), problems=problems or {}, form=form or {},
        cancellable=found.status in CANCELLABLE, dispute_key=new_key(), cancel_key=new_key(), **who.page(),
    )  # fmt: skip


@get("/my-requests/{request_id:str}", include_in_schema=False)
async def my_request(request: Request[Any, Any, State], request_id: FromPath[str]) -> Response[Any]:
    who = await signed(request, "resident")
    if not isinstance(who, Signed):
        return who
    found = await _own(request, who, request_id)
    if found is None:
        return not_found(request, who)
    return await _draw_one(request, who, found)


async def _sent(
    request: Request[Any, Any, State], request_id: str
) -> tuple[Signed, Any, ServiceRequest] | Response[Any]:
    """A form about one of the member's own requests (another's, even if visible, is not found)."""
    sent = await posted_about(request, "resident", request_id)
    if isinstance(sent, tuple) and sent[2].member_id != sent[0].member.id:
        return not_found(request, sent[0])
    return sent


@post("/my-requests/{request_id:str}/confirm", include_in_schema=False, status_code=200)
async def confirm(request: Request[Any, Any, State], request_id: FromPath[str]) -> Response[Any]:
    """Without a key: check the stars and draw the confirmation step; with its key: the hours move, once."""
    sent = await _sent(request, request_id)
    if not isinstance(sent, tuple):
        return sent
    who, form, found = sent
    rating_text = form_field(form, "rating")
    comment = str(form.get("comment") or "").replace("\x00", "").strip()[:MAX_COMMENT]
    typed = {"rating": rating_text, "comment": comment}
    if rating_text not in ("1", "2", "3", "4", "5"):
        return await _draw_one(request, who, found, {"rating": sentence("no_rating")}, 400, typed)
    body = ServiceRequestConfirm(rating=int(rating_text), comment=comment or None)
    key = key_of(form)
    time_zone = await communities.time_zone_of(database_of(request), who.community_id)
    if key is None:
        return render(
            request, "confirm_service.html", r=card(found, time_zone), rating=body.rating, comment=comment,
            key=new_key(), **who.page(),
        )  # fmt: skip
    outcome = await act(
        request, who.principal, key, "confirm_service_request", "service_request_confirm", found.id, body,
        found.id, body.rating, body.comment, body.minutes,
    )  # fmt: skip
    if outcome.code is not None:
        return await _draw_one(request, who, found, {"rating": sentence(outcome.code)}, outcome.status, typed)
    paid: ServiceRequest = outcome.value(ServiceRequest)
    return done(
        request, who, N_("Thank you"),
        result_sentence(N_("%(name)s has been paid %(amount)s."), name=paid.provider_name or "",
                        amount=minutes_in_words(paid.reported_minutes or 0)),
        "/my-requests", N_("See my requests"),
    )  # fmt: skip


@post("/my-requests/{request_id:str}/dispute", include_in_schema=False, status_code=200)
async def dispute(request: Request[Any, Any, State], request_id: FromPath[str]) -> Response[Any]:
    sent = await _sent(request, request_id)
    if not isinstance(sent, tuple):
        return sent
    who, form, found = sent
    reason = str(form.get("reason") or "").replace("\x00", "").strip()[:MAX_COMMENT]
    key = key_of(form)
    if not reason or key is None:
        return await _draw_one(request, who, found, {"reason": sentence("no_reason")}, 400, {"reason": reason})
    body = ServiceRequestReason(reason=reason)
    outcome = await act(
        request, who.principal, key, "dispute_service_request", "service_request_dispute", found.id, body,
        found.id, body.reason,
    )  # fmt: skip
    if outcome.code is not None:
        return await _draw_one(
            request, who, found, {"reason": sentence(outcome.code)}, outcome.status, {"reason": reason}
        )
    return done(
        request, who, N_("We will check"),
        result_sentence(N_("The community office will look at this service and call you.")),
        "/my-requests", N_("See my requests"), also=N_("No hours move until it is settled."),
    )  # fmt: skip


@post("/my-requests/{request_id:str}/cancel", include_in_schema=False, status_code=200)
async def cancel(request: Request[Any, Any, State], request_id: FromPath[str]) -> Response[Any]:
    sent = await _sent(request, request_id)
    if not isinstance(sent, tuple):
        return sent
    who, form, found = sent
    key = key_of(form)
    if key is None:
        return await _draw_one(request, who, found, {"cancel": sentence("idempotency_key_reused")}, 400)
    body = ServiceRequestReason(reason="cancelled by the member on the pages")
    outcome = await act(
        request, who.principal, key, "cancel_service_request", "service_request_cancel", found.id, body,
        found.id, body.reason,
    )  # fmt: skip
    if outcome.code is not None:
        return await _draw_one(request, who, found, {"cancel": sentence(outcome.code)}, outcome.status)
    return done(
        request, who, N_("Cancelled"),
        result_sentence(N_("Your request is cancelled. The hours set aside are yours again.")),
        "/my-requests", N_("See my requests"),
    )  # fmt: skip
