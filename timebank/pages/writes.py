"""The pages' writes: the API's own idempotent SQL operations, with the key a form carried.

A form that changes a request or moves hours carries a key made when the form was drawn
(`new_key`); sending it twice (a double click, a resubmitted form) acts once and answers the first
outcome again. A refusal comes back as its stable code, for the page to say in words.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import State

from timebank.errors import CODES, DomainError
from timebank.http.context import Principal
from timebank.http.idempotency import ReplayedProblemError, execute_write
from timebank.pages.common import database_of

KEY_FIELD = "key"
_KEY = re.compile(r"^page-[A-Za-z0-9_-]{20,64}$")


def new_key() -> str:
    return "page-" + secrets.token_urlsafe(24)


def key_of(form: Any) -> str | None:
    """The form's idempotency key, or None when it is missing or not one the pages made."""
    value = form.get(KEY_FIELD)
    return value if isinstance(value, str) and _KEY.match(value) else None


@dataclass(frozen=True)
class Outcome:
    """A write's answer: the stored body (on success), or the refusal's code."""

    body: bytes | None
    code: str | None
    replayed: bool = False

    @property
    def status(self) -> int:
        """The HTTP status the API answers this refusal with (the page says it in words)."""
        return CODES[self.code].status if self.code in CODES else 422

    def value(self, model: type[Any]) -> Any:
        assert self.body is not None
        return msgspec.json.decode(self.body, type=model)


async def act(
    request: Request[Any, Any, State],
    principal: Principal,
    key: str,
    function: str,
    operation: str,
    target: object,
    body: msgspec.Struct | None,
    *args: Any,
) -> Outcome:
    """One write, exactly as the API makes it (same SQL function, operation and body)."""
    try:
        result = await execute_write(
            database_of(request), request, principal, function, operation, target, body, *args, key=key
        )
    except ReplayedProblemError as replayed:
        code = msgspec.json.decode(replayed.result.body).get("code", "invalid_request")
        return Outcome(None, str(code), replayed=True)
    except DomainError as err:
        if err.status >= 500:
            raise
        return Outcome(None, err.code)
    return Outcome(result.body, None, result.replayed)
