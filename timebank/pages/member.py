"""What the member pages share: who is signed in (and with which role), a checked form, a request
the member may see, and the pages that say "not for you" or "not found"."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from litestar.datastructures import State

from timebank.errors import ForbiddenError, NotFoundError
from timebank.http.context import Principal
from timebank.members.models import Member
from timebank.pages import session
from timebank.pages.common import database_of, member_context, refused, render, to_login
from timebank.services import service as services
from timebank.services.models import ServiceRequest


@dataclass(frozen=True)
class Signed:
    principal: Principal
    member: Member
    csrf: str

    @property
    def community_id(self) -> uuid.UUID:
        assert self.principal.community_id is not None
        return self.principal.community_id

    def page(self) -> dict[str, Any]:
        """The context every signed-in page draws with."""
        return {"member": self.member, "csrf": self.csrf, "signed_in": True, "signed_in_name": self.member.display_name}


async def signed(request: Request[Any, Any, State], role: str | None = None) -> Signed | Response[Any]:
    """The signed-in member, or the answer to give instead: sign in, or "this page is not for you"."""
    found = await member_context(request)
    if found is None:
        return to_login(request)
    principal, member, csrf = found
    who = Signed(principal, member, csrf)
    if role is not None and role not in member.roles:
        return render(request, "notice.html", 403, notice="not_yours", **who.page())
    return who


async def posted(request: Request[Any, Any, State], role: str | None = None) -> tuple[Signed, Any] | Response[Any]:
    """A form sent by the signed-in member, its CSRF token checked first (403 without it)."""
    form = await request.form()
    if not session.csrf_ok(session.session_token(request), form.get(session.CSRF_FIELD)):
        return refused(request)
    who = await signed(request, role)
    if isinstance(who, Response):
        return who
    return who, form


async def posted_about(
    request: Request[Any, Any, State], role: str, request_id: str
) -> tuple[Signed, Any, ServiceRequest] | Response[Any]:
    """A form about one service request the member may see (else the 404 page)."""
    sent = await posted(request, role)
    if not isinstance(sent, tuple):
        return sent
    who, form = sent
    found = await visible_request(request, who, request_id)
    if found is None:
        return not_found(request, who)
    return who, form, found


def not_found(request: Request[Any, Any, State], who: Signed) -> Response[Any]:
    return render(request, "notice.html", 404, notice="not_found", **who.page())


def parse_id(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if len(text) <= 40 else None
    except ValueError:
        return None


async def visible_request(request: Request[Any, Any, State], who: Signed, text: str) -> ServiceRequest | None:
    """The service request, if it exists and the member may read it (else None: the page says 404)."""
    request_id = parse_id(text)
    if request_id is None:
        return None
    try:
        return await services.get_service_request(database_of(request), who.principal, request_id)
    except (NotFoundError, ForbiddenError):
        return None
