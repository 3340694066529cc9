"""Sign-in cards: the coordinator prints one (/staff/members/{id}/card); its QR code opens
/login/card/<secret> on the member's phone, which asks for the PIN only.

The decision (PAGES.md leaves it to the community): the PIN always follows the card, on every
device. The card spares the member typing the community code and member number; a lost or
photographed card alone signs nobody in, and the PIN's lock after five wrong tries still holds.
"""

from __future__ import annotations

import uuid
from typing import Any

import segno
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from markupsafe import Markup

from timebank.errors import DomainError
from timebank.http.context import request_id_of
from timebank.members import cards
from timebank.members import service as members
from timebank.pages.common import database_of, form_field, render
from timebank.pages.login import form_page, sent_form, signed_in, try_pin
from timebank.pages.staff.common import not_found, staff_form


def card_url(request: Request[Any, Any, State], secret: str) -> str:
    return str(request.base_url).rstrip("/") + f"/login/card/{secret}"


def qr_svg(url: str) -> Markup:
    """The QR code as inline SVG, drawn by the server (no script, no other host)."""
    svg = segno.make(url, error="m").svg_inline(scale=6, border=4, dark="#000", light="#fff")
    return Markup(svg.replace("<svg ", '<svg role="img" aria-hidden="true" ', 1))  # noqa: S704 - segno's own markup


@post("/staff/members/{member_id:uuid}/card", include_in_schema=False, status_code=200)
async def print_card(request: Request[Any, Any, State], member_id: FromPath[uuid.UUID]) -> Response[Any]:
    """A new card, shown once: the previous card stops working."""
    signed = await staff_form(request)
    if isinstance(signed, Response):
        return signed
    staff, _form = signed
    db = database_of(request)
    try:
        member = await members.get_visible(db, staff.principal, member_id)
        secret = await cards.issue_card(db, staff.principal, request_id_of(request), member.id)
    except DomainError:
        return not_found(request)
    url = card_url(request, secret)
    response = render(request, "staff/card.html", section="members", member=member, community=staff.slug,
                      url=url, qr=qr_svg(url), **staff.context)  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    return response


def _card_page(request: Request[Any, Any, State], holder: cards.CardHolder, secret: str, status: int = 200,
               error: str | None = None, locked_minutes: int | None = None) -> Response[Any]:  # fmt: skip
    response = form_page(request, "card_login.html", status, holder=holder, error=error,
                         locked_minutes=locked_minutes, action=f"/login/card/{secret}")  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@get("/login/card/{secret:str}", include_in_schema=False)
async def card_login_page(request: Request[Any, Any, State], secret: FromPath[str]) -> Response[Any]:
    holder = await cards.card_holder(database_of(request), secret)
    if holder is None:
        return render(request, "card_unknown.html", 404)
    return _card_page(request, holder, secret)


@post("/login/card/{secret:str}", include_in_schema=False, status_code=303)
async def card_login(request: Request[Any, Any, State], secret: FromPath[str]) -> Response[Any]:
    """The card names the member; the PIN signs in, with /login's throttles and lock."""
    sent = await sent_form(request)
    if isinstance(sent, Response):
        return sent
    _pre_session, form = sent
    holder = await cards.card_holder(database_of(request), secret)
    if holder is None:
        return render(request, "card_unknown.html", 404)
    attempt = await try_pin(request, holder.community, holder.member_no, form_field(form, "pin"))
    if attempt.token is not None:
        return signed_in(request, attempt.token)
    return _card_page(request, holder, secret, attempt.status, attempt.error, attempt.wait_minutes)
