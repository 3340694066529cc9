"""What the sign-in forms share (/login, /login/card, /login/token): the pre-session their CSRF
token belongs to, the PIN attempt under the per-address throttle, and the answer that signs in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from litestar.datastructures import FormMultiDict, State
from litestar.response import Redirect

from timebank.auth.throttle import AuthThrottle
from timebank.http.context import client_address, request_id_of
from timebank.pages import session
from timebank.pages.common import database_of, refused, render
from timebank.pages.signin import sign_in


def form_page(request: Request[Any, Any, State], template: str, status: int = 200, **context: Any) -> Response[Any]:
    """A sign-in form, with the pre-session its CSRF token belongs to (made now if the browser has none)."""
    secret = session.pre_session(request) or session.new_secret()
    return render(request, template, status, csrf=session.csrf_for(secret),
                  cookies=[session.cookie(request, session.PRE_SESSION_COOKIE, secret)], **context)  # fmt: skip


async def sent_form(request: Request[Any, Any, State]) -> tuple[str, FormMultiDict] | Response[Any]:
    """The pre-session and the form sent with it, or refused when the form's CSRF token is not the
    pre-session's (a form from another site, or one drawn for another browser)."""
    form = await request.form()
    secret = session.pre_session(request)
    if not session.csrf_ok(secret, form.get(session.CSRF_FIELD)):
        return refused(request)
    assert secret is not None
    return secret, form


def signed_in(request: Request[Any, Any, State], token: str) -> Response[Any]:
    """Home, holding the new session; the pre-session has done its work."""
    response: Response[Any] = Redirect("/", status_code=303)
    response.set_cookie(session.cookie(request, session.SESSION_COOKIE, token))
    response.set_cookie(session.expired(request, session.PRE_SESSION_COOKIE))
    return response


def minutes_to_wait(seconds: int) -> int:
    """Seconds as the whole minutes a person is told to wait (never fewer than there are)."""
    return (seconds + 59) // 60


@dataclass(frozen=True)
class PinAttempt:
    """A PIN sign-in as the page answers it: the session token, or why not in a word the page says."""

    token: str | None = None
    # "missing" (a field is empty), "busy" (too many failures from the address), "wrong" or "locked".
    error: str | None = None
    wait_minutes: int | None = None

    @property
    def status(self) -> int:
        """The status the form is drawn again with: 400 missing, 401 wrong, 429 busy or locked."""
        return {"missing": 400, "wrong": 401}.get(self.error or "", 429)


async def try_pin(request: Request[Any, Any, State], community: str, member_no: str, pin: str) -> PinAttempt:
    """Sign in with a PIN as /login and /login/card both do: every field given, then the address's
    throttle (wrong PINs count there with the API's failed authentications), then the PIN and its lock."""
    if not (community and member_no and pin):
        return PinAttempt(error="missing")
    throttle: AuthThrottle = request.app.state.auth_throttle
    address = client_address(request)
    if not throttle.allows(address):
        return PinAttempt(error="busy", wait_minutes=minutes_to_wait(throttle.retry_after_seconds(address)))
    result = await sign_in(database_of(request), request_id_of(request), community, member_no, pin)
    if result.token is not None:
        return PinAttempt(token=result.token)
    throttle.record_failure(address)
    if result.locked_seconds is None:
        return PinAttempt(error="wrong")
    return PinAttempt(error="locked", wait_minutes=minutes_to_wait(result.locked_seconds))
