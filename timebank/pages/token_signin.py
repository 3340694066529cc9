"""Signing in with an access token at `/login?token` (PAGES.md): for admins and auditors, who have
no PIN. The token is checked and a session of the same principal issued by PostgreSQL
(sql/functions/96_sign_in_token.sql); a wrong token counts against the address like any failed
authentication of the API."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import State

from timebank.auth.throttle import AuthThrottle
from timebank.auth.tokens import new_token
from timebank.http.context import client_address, hash_token, request_id_of
from timebank.pages import session
from timebank.pages.common import database_of, render
from timebank.pages.login import form_page, minutes_to_wait, sent_form, signed_in

MAX_TOKEN_CHARS = 200


def token_login_page(request: Request[Any, Any, State]) -> Response[Any]:
    return form_page(request, "login_token.html", error=None, wait_minutes=None)


@post("/login/token", include_in_schema=False, status_code=303)
async def login_with_token(request: Request[Any, Any, State]) -> Response[Any]:
    posted = await sent_form(request)
    if isinstance(posted, Response):
        return posted
    secret, form = posted
    sent = form.get("token")
    token = sent.strip() if isinstance(sent, str) else ""
    throttle: AuthThrottle = request.app.state.auth_throttle
    address = client_address(request)
    error, wait_minutes, status = "missing", None, 400
    if token and len(token) <= MAX_TOKEN_CHARS and token.isprintable():
        if not throttle.allows(address):
            error, wait_minutes, status = "busy", minutes_to_wait(throttle.retry_after_seconds(address)), 429
        else:
            session_token, digest = new_token()
            principal = await database_of(request).fetchval(
                "select sign_in_with_token($1, $2, $3)", request_id_of(request), hash_token(token), digest
            )
            if principal is not None:
                return signed_in(request, session_token)
            throttle.record_failure(address)
            error, status = "wrong", 401
    elif token:
        error, status = "wrong", 401
    return render(
        request, "login_token.html", status, csrf=session.csrf_for(secret), error=error, wait_minutes=wait_minutes
    )
