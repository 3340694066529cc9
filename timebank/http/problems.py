"""One exception handler: every error leaves as RFC 9457 problem+json with a stable code."""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ValidationException

from timebank.db import Database, translate
from timebank.errors import (
    PROBLEM_MEDIA_TYPE,
    DomainError,
    FieldError,
    InvalidRequestError,
    Problem,
    TooManyRequestsError,
)
from timebank.http.context import request_id_of
from timebank.http.idempotency import ReplayedProblemError
from timebank.i18n import CONTENT_LANGUAGE, localize_problem, negotiate

log = structlog.get_logger(__name__)

# Litestar's own client errors (routing, body size, malformed JSON) by status.
HTTP_STATUS_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}


def _field_errors(extra: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                message = str(item.get("message", "invalid value"))
                key = item.get("key")
                path = message.rsplit("at `", 1)[-1].rstrip("`") if "at `$" in message else ""
                field = path or (f"$.{key}" if key and key != "data" else "$")
                errors.append(FieldError(field=field, message=message.split(" - at `", maxsplit=1)[0]))
    return errors


def to_domain_error(exc: Exception) -> DomainError:
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, ValidationException):
        errors = _field_errors(exc.extra)
        return InvalidRequestError(
            "; ".join(f"{e.field}: {e.message}" for e in errors) or "the request is not valid", errors=errors
        )
    if isinstance(exc, HTTPException):
        code = HTTP_STATUS_CODES.get(exc.status_code)
        if code is not None:
            return DomainError(str(exc.detail), code=code)
    mapped = translate(exc)
    if mapped is not None:
        return mapped
    return DomainError("the service failed to handle this request", code="internal_error")


def problem_response(request: Request[Any, Any, State], exc: Exception) -> Response[bytes]:
    """The problem for `exc`, in the language the caller reads (Accept-Language: English or Chinese).

    Problems are made, and remembered under an Idempotency-Key, in English; each answer is then
    rendered in the caller's language, so a retry reads in the language of the retry.
    """
    request_id = request_id_of(request)
    language = negotiate(request.headers.getall("accept-language", []))
    headers = {"Content-Language": CONTENT_LANGUAGE[language], "Vary": "Accept-Language"}
    if isinstance(exc, ReplayedProblemError):
        # Stored as jsonb, which reorders members: re-encode so the replay is byte for byte the original.
        return Response(
            msgspec.json.encode(localize_problem(msgspec.json.decode(exc.result.body, type=Problem), language)),
            status_code=exc.result.status,
            media_type=PROBLEM_MEDIA_TYPE,
            headers={**headers, "Idempotent-Replayed": "true"},
        )
    error = to_domain_error(exc)
    if error.code == "internal_error":
        log.error("request_failed", exc_info=exc)
    request.scope.setdefault("state", {})["error_code"] = error.code
    if isinstance(error, TooManyRequestsError) or getattr(error, "retry_after", None) is not None:
        headers["Retry-After"] = str(getattr(error, "retry_after", 1))
    elif error.status == 503:
        # Transient by definition: a conflict that outlasted its retries, or the database away.
        headers["Retry-After"] = "1"
    if isinstance(exc, HTTPException) and exc.headers and "allow" in {k.lower() for k in exc.headers}:
        # RFC 9110: a 405 says which methods the resource has.
        headers["Allow"] = next(v for k, v in exc.headers.items() if k.lower() == "allow")
    return Response(
        msgspec.json.encode(localize_problem(error.to_problem(request_id), language)),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def _record_refusal(
    db: Database, action: str, principal_id: str | None, request_id: str, details: dict[str, Any]
) -> None:
    try:
        await db.record_refusal(action, principal_id, request_id, details)
    except Exception:  # The refusal stands even if the trail cannot be written.
        log.warning("refusal_not_audited", exc_info=True)


def handle_exception(request: Request[Any, Any, State], exc: Exception) -> Response[bytes]:
    """Render the problem. A 401/403 leaves a `request.denied` audit event, any other refused write
    a `write.rejected` one (unless the write's own SQL already recorded it).

    Litestar calls exception handlers synchronously, so the audit write runs as the response's
    background task: after the answer is sent, before the request's task ends.
    """
    response = problem_response(request, exc)
    error = exc if isinstance(exc, DomainError) else None
    db: Database | None = request.app.state.get("db")
    status = response.status_code or 500
    denied = status in (401, 403)
    # A throttled request is not audited: under a guessing attack that would be a write per guess.
    rejected = 400 <= status < 500 and status != 429 and request.method in WRITE_METHODS
    audited = isinstance(exc, ReplayedProblemError) or bool(error and error.extra.get("audited"))
    if (denied or rejected) and db is not None and not audited:
        state = request.scope.get("state", {})
        details = {
            "method": request.method,
            "path": request.url.path[:200],
            "status": status,
            "code": state.get("error_code"),
        }
        action = "request.denied" if denied else "write.rejected"
        response.background = BackgroundTask(
            _record_refusal, db, action, state.get("principal_id"), request_id_of(request), details
        )
    return response
