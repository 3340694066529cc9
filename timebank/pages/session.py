"""Sessions and CSRF for the pages.

A session is a token of the member's own (the same kind the API takes as a bearer token), made at
sign-in and kept by the browser in an HttpOnly, SameSite=Lax cookie (Secure over https). So a
session is authenticated, cached and revoked exactly as an API token is, on every process of the
service; signing out revokes it.

CSRF: every form carries a token derived from a secret the browser holds only in an HttpOnly
cookie (the session's token, or before sign-in a random pre-session value), checked in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie

SESSION_COOKIE = "tb_session"
PRE_SESSION_COOKIE = "tb_pre"
CSRF_FIELD = "csrf_token"
_MAX_COOKIE_CHARS = 200


def is_https(request: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return request.url.scheme == "https"


def cookie(request: ASGIConnection[Any, Any, Any, Any], name: str, value: str, max_age: int | None = None) -> Cookie:
    return Cookie(
        key=name, value=value, path="/", httponly=True, samesite="lax", secure=is_https(request), max_age=max_age
    )


def expired(request: ASGIConnection[Any, Any, Any, Any], name: str) -> Cookie:
    return cookie(request, name, "", max_age=0)


def session_token(request: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    value = request.cookies.get(SESSION_COOKIE)
    return value if value and len(value) <= _MAX_COOKIE_CHARS else None


def pre_session(request: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    value = request.cookies.get(PRE_SESSION_COOKIE)
    return value if value and len(value) <= _MAX_COOKIE_CHARS else None


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def csrf_for(secret: str) -> str:
    return hmac.new(secret.encode(), b"timebank-pages-csrf", hashlib.sha256).hexdigest()


def csrf_ok(secret: str | None, sent: object) -> bool:
    return secret is not None and isinstance(sent, str) and hmac.compare_digest(csrf_for(secret), sent)


def with_pre_session(request: Request[Any, Any, Any], response: Response[Any], secret: str) -> Response[Any]:
    if pre_session(request) != secret:
        response.set_cookie(cookie(request, PRE_SESSION_COOKIE, secret))
    return response
