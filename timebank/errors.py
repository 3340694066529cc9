"""Domain errors and their RFC 9457 problem-details rendering."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import msgspec

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://timebank.example/problems/"


class FieldError(msgspec.Struct, frozen=True):
    """One fault in a request, located by JSON path."""

    field: str
    message: str


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """RFC 9457 problem details with a stable `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None
    account_id: str | None = None
    available_minutes: int | None = None
    cap_minutes: int | None = None
    unit_minutes: int | None = None
    max_transaction_minutes: int | None = None
    held_minutes: int | None = None
    transaction_id: str | None = None
    reversed_by: str | None = None
    hold_id: str | None = None
    request_id: str | None = None


# Extra members a problem may carry beyond the RFC 9457 ones.
_EXTRA_MEMBERS = frozenset(Problem.__struct_fields__) - {
    "type",
    "title",
    "status",
    "detail",
    "code",
    "errors",
    "request_id",
}

# The stable error codes, their HTTP status and title. API.md lists them; this is the one place.
CODES: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "Invalid request"),
    "idempotency_key_required": (400, "Idempotency-Key header required"),
    "unauthenticated": (401, "Authentication required"),
    "forbidden": (403, "Forbidden"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "unsupported_media_type": (415, "Unsupported media type"),
    "request_too_large": (413, "Request body too large"),
    "community_exists": (409, "Community exists"),
    "idempotency_key_reused": (409, "Idempotency-Key reused"),
    "already_reversed": (409, "Already reversed"),
    "cannot_reverse_reversal": (409, "Cannot reverse a reversal"),
    "hold_not_pending": (409, "Hold not pending"),
    "conflict": (409, "Conflict"),
    "amount_not_multiple_of_unit": (422, "Amount not a multiple of the unit"),
    "amount_out_of_range": (422, "Amount out of range"),
    "insufficient_balance": (422, "Insufficient balance"),
    "balance_cap_exceeded": (422, "Balance cap exceeded"),
    "not_a_volunteer": (422, "Not a volunteer"),
    "same_account": (422, "Same account"),
    "cross_community_not_allowed": (422, "Cross-community transfer not allowed"),
    "capture_exceeds_hold": (422, "Capture exceeds hold"),
    "too_many_requests": (429, "Too many requests"),
    "internal_error": (500, "Internal error"),
    "conflict_retry": (503, "Conflict, retry"),
    "unavailable": (503, "Service unavailable"),
}

# Failures that say nothing lasting about a request: never remembered under an Idempotency-Key.
TRANSIENT_CODES = frozenset({"conflict_retry", "unavailable", "internal_error", "idempotency_key_reused"})


class DomainError(Exception):
    """A request broke a rule; rendered as problem details with a stable code."""

    code: ClassVar[str] = "invalid_request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.extra = extra

    @property
    def status(self) -> int:
        return CODES.get(self.code, (400, ""))[0]

    def to_problem(self, request_id: str | None = None) -> Problem:
        status, title = CODES.get(self.code, (400, "Invalid request"))
        extra = {k: v for k, v in self.extra.items() if k in _EXTRA_MEMBERS}
        errors = self.extra.get("errors")
        problem = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": title,
            "status": status,
            "detail": self.detail,
            "code": self.code,
            "errors": [e if isinstance(e, FieldError) else FieldError(**e) for e in errors] if errors else None,
            "request_id": request_id,
            **{k: (str(v) if isinstance(v, str | uuid.UUID) else v) for k, v in extra.items()},
        }
        return msgspec.convert(problem, Problem, from_attributes=True)


class InvalidRequestError(DomainError):
    """The request is malformed: bad JSON, wrong types, unknown fields, limits exceeded."""

    code = "invalid_request"


class UnauthenticatedError(DomainError):
    """No token, or a token that is not known."""

    code = "unauthenticated"


class ForbiddenError(DomainError):
    """The caller is known but lacks the right for this action."""

    code = "forbidden"


class NotFoundError(DomainError):
    """The resource does not exist or is outside the caller's reach."""

    code = "not_found"


class IdempotencyKeyRequiredError(DomainError):
    """Writes that move hours must carry an Idempotency-Key header."""

    code = "idempotency_key_required"


class TooManyRequestsError(DomainError):
    """Too many failed authentications from this address; retry after `retry_after` seconds."""

    code = "too_many_requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ConflictRetryError(DomainError):
    """Concurrent writes kept colliding; the request changed nothing and may be retried as is."""

    code = "conflict_retry"


class UnavailableError(DomainError):
    """The database cannot be reached or the service is shutting down."""

    code = "unavailable"


def problem_from_code(code: str, detail: str, **extra: Any) -> DomainError:
    """Build the DomainError for a stable code (used when translating database errors)."""
    return DomainError(detail, code=code if code in CODES else "invalid_request", **extra)
