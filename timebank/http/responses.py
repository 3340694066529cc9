"""Shared route pieces: the problem responses each route documents, and write responses.

A route names the codes its own rules can answer; `problems` adds those every route of its kind
can answer (authentication, throttling, a body's faults, the idempotency contract, unavailability),
groups them by status from the one registry in timebank.errors and gives each code a real example.
timebank.http.openapi turns the examples of each response into the `code` enum of its schema.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Response
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from timebank.errors import CODES, PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE, Problem
from timebank.http.idempotency import WriteResult

T = TypeVar("T")

# A real answer for each code: what the service says when that rule refuses a request.
EXAMPLES: dict[str, dict[str, Any]] = {
    "invalid_request": {
        "detail": "$.minutes: Expected `int`, got `str`",
        "errors": [{"field": "$.minutes", "message": "Expected `int`, got `str`"}],
    },
    "idempotency_key_required": {"detail": "this write needs an Idempotency-Key header"},
    "unauthenticated": {"detail": "a valid bearer token is required"},
    "forbidden": {"detail": "the caller may not do this"},
    "not_found": {"detail": "no such member"},
    "method_not_allowed": {"detail": "Method Not Allowed"},
    "request_too_large": {"detail": "Request Entity Too Large"},
    "unsupported_media_type": {"detail": "send the body as application/json"},
    "community_exists": {"detail": "a community with slug zixuan already exists"},
    "member_exists": {
        "detail": "another member of this community already has this phone",
        "errors": [{"field": "$.phone", "message": "already used by another member of this community"}],
    },
    "relative_exists": {
        "detail": "these members are already linked as relatives; remove the link to change it",
        "errors": [{"field": "$.relative_member_id", "message": "already linked"}],
    },
    "service_type_exists": {"detail": "the service type meals already exists in this community"},
    "idempotency_key_reused": {"detail": "this Idempotency-Key was used with a different request"},
    "already_reversed": {
        "detail": "this transaction was already reversed",
        "transaction_id": "0b9f1f5e-3c43-4a8e-9d55-0c4d2f7f1a10",
        "reversed_by": "5f0c2a7e-8a6b-4a43-b3c1-2f5d9b0e6d21",
    },
    "cannot_reverse_reversal": {
        "detail": "a reversal cannot itself be reversed",
        "transaction_id": "5f0c2a7e-8a6b-4a43-b3c1-2f5d9b0e6d21",
    },
    "hold_not_pending": {
        "detail": "this hold was already captured, released or expired",
        "hold_id": "7d1e3a52-4a0b-4c1e-9d8e-2b6f0a9c3e11",
    },
    "invalid_transition": {
        "detail": "a request that is completed cannot be assigned",
        "current_status": "completed",
        "service_request_id": "9a4c2e1f-6b3d-4f7a-8e2c-1d5b7f9a3c40",
    },
    "hold_belongs_to_request": {
        "detail": "this hold belongs to a service request; confirm or cancel the request instead",
        "hold_id": "7d1e3a52-4a0b-4c1e-9d8e-2b6f0a9c3e11",
        "service_request_id": "9a4c2e1f-6b3d-4f7a-8e2c-1d5b7f9a3c40",
    },
    "unknown_service_type": {
        "detail": "bathing is not an active service type of this community",
        "errors": [{"field": "$.service_type", "message": "not an active service type of this community"}],
    },
    "invalid_schedule": {
        "detail": "scheduled_at must lie between 7 days ago and 366 days ahead",
        "errors": [{"field": "$.scheduled_at", "message": "between 7 days ago and 366 days ahead"}],
    },
    "not_yet_logged": {"detail": "the transaction is not in the public log yet; retry shortly"},
    "invalid_tree_size": {
        "detail": "tree_size 40 is not the size of a signed checkpoint that contains leaf 41",
        "errors": [{"field": "tree_size", "message": "use a signed size above 41, at most 57"}],
    },
    "conflict": {"detail": "TIMEBANK_ADMIN_TOKEN is already the token of a non-admin principal"},
    "amount_not_multiple_of_unit": {"detail": "minutes must be a multiple of 15", "unit_minutes": 15},
    "amount_out_of_range": {"detail": "minutes must be between 1 and 1440", "max_transaction_minutes": 1440},
    "insufficient_balance": {
        "detail": "account 3c6ef3b2-1d5f-4f55-a1c8-9e0f4b2d7a33 cannot give 60 minutes: balance 30, held 0,"
        " lowest allowed 0",
        "account_id": "3c6ef3b2-1d5f-4f55-a1c8-9e0f4b2d7a33",
        "available_minutes": 30,
    },
    "balance_cap_exceeded": {
        "detail": "account 3c6ef3b2-1d5f-4f55-a1c8-9e0f4b2d7a33 may hold at most 90000 minutes",
        "account_id": "3c6ef3b2-1d5f-4f55-a1c8-9e0f4b2d7a33",
        "cap_minutes": 90000,
    },
    "not_a_volunteer": {"detail": "only members with the volunteer role can be credited"},
    "duplicate_member": {
        "detail": "1 of 3 credits break a rule (the first: duplicate_member); nothing was credited",
        "errors": [
            {
                "field": "$.credits[2]",
                "message": "this member is already in the batch",
                "index": 2,
                "member_id": "3f6c1a2e-8d4b-4c1f-9e2a-7b5d0c9e1f33",
                "code": "duplicate_member",
            }
        ],
    },
    "not_a_member": {
        "detail": "2 of 40 credits break a rule (the first: not_a_member); nothing was credited",
        "errors": [
            {
                "field": "$.credits[3]",
                "message": "not a member of this community",
                "index": 3,
                "member_id": "3f6c1a2e-8d4b-4c1f-9e2a-7b5d0c9e1f33",
                "code": "not_a_member",
            },
            {
                "field": "$.credits[17]",
                "message": "younger than volunteer_min_age on the service date, or no birth_date",
                "index": 17,
                "member_id": "9a2b7c4d-1e5f-4a6b-8c9d-0e1f2a3b4c5d",
                "code": "not_eligible",
            },
        ],
    },
    "same_account": {"detail": "a member cannot transfer hours to itself"},
    "cross_community_not_allowed": {"detail": "hours cannot move between communities"},
    "capture_exceeds_hold": {"detail": "the hold reserves only 60 minutes", "held_minutes": 60},
    "service_date_in_future": {"detail": "service_date 2031-01-01 is after today (2026-12-01 in Asia/Shanghai)"},
    "not_eligible": {
        "detail": "volunteers must be at least 18 years old; member 3f6c1a2e-8d4b-4c1f-9e2a-7b5d0c9e1f33"
        " is 17 on 2026-11-01"
    },
    "not_a_relative": {
        "detail": "this community allows gifts only to relatives; member 3f6c1a2e-8d4b-4c1f-9e2a-7b5d0c9e1f33"
        " is not a linked relative of member 9a2b7c4d-1e5f-4a6b-8c9d-0e1f2a3b4c5d",
        "errors": [{"field": "$.to_member_id", "message": "not a linked relative of the sender"}],
    },
    "invalid_date_range": {
        "detail": "`to` is before `from`",
        "errors": [{"field": "to", "message": "before from"}],
    },
    "invalid_expiry": {
        "detail": "expires_at must be in the future and within 366 days",
        "errors": [{"field": "$.expires_at", "message": "must be in the future and within 366 days"}],
    },
    "invalid_transfer_target": {
        "detail": "give exactly one target: to_member_id, or to_pool true",
        "errors": [{"field": "$.to_member_id", "message": "exactly one of to_member_id and to_pool"}],
    },
    "unknown_time_zone": {
        "detail": "time_zone must be an IANA time zone name such as Asia/Shanghai",
        "errors": [{"field": "$.time_zone", "message": "not an IANA time zone name"}],
    },
    "invalid_cursor": {
        "detail": "cursor is not one this service issued",
        "errors": [{"field": "cursor", "message": "invalid cursor"}],
    },
    "too_many_requests": {"detail": "too many failed authentications from this address"},
    "too_many_attempts": {
        "detail": "too many wrong PINs for this member; PIN changes are locked until 2026-12-07T15:20:00+00:00"
    },
    "internal_error": {"detail": "the service failed to handle this request"},
    "conflict_retry": {"detail": "the write kept conflicting with concurrent writes; retry with the same key"},
    "unavailable": {"detail": "the database is not available"},
    "pdf_font_missing": {
        "detail": "no font with Chinese glyphs is installed for the passbook PDF: install one with"
        " `apt-get install fonts-noto-cjk`, or name a .ttf, .otf or .ttc font in TIMEBANK_PDF_FONT"
    },
}

_STATUS_PHRASES = {
    400: "The request is malformed",
    401: "Missing or unknown token",
    403: "The caller lacks the right",
    404: "Not found, or outside the caller's reach",
    409: "Conflict with the current state",
    413: "Request body too large",
    415: "The body is not JSON",
    422: "A rule refused the request",
    429: "Too many requests; see Retry-After",
    500: "A bug; the body says nothing internal",
    503: "Transient conflict or database unavailable; safe to retry (same key); see Retry-After",
}

# Every route can fail on the service's side.
_ALWAYS = ("internal_error", "unavailable")
# Every /v1 route authenticates first, and throttles addresses that guess tokens.
_AUTHENTICATED = ("unauthenticated", "too_many_requests")
# A JSON body can be malformed, too large or not JSON at all.
_BODY = ("invalid_request", "request_too_large", "unsupported_media_type")
# Writes under the idempotency contract.
_KEYED = ("invalid_request", "idempotency_key_required", "idempotency_key_reused", "conflict_retry")


def example_problem(code: str) -> dict[str, Any]:
    """The problem document the service sends for `code`, as in EXAMPLES."""
    entry = CODES[code]
    return {
        "type": PROBLEM_TYPE_BASE + code,
        "title": entry.title,
        "status": entry.status,
        "detail": EXAMPLES[code]["detail"],
        "code": code,
        **{k: v for k, v in EXAMPLES[code].items() if k != "detail"},
        "request_id": "3f2b6c1e9a7d4e0b8c5a1f2e3d4c5b6a",
    }


def problems(
    *codes: str, body: bool = False, keyed: bool = False, authenticated: bool = True
) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem+json answers a route can give, one per status, with the
    codes of each as examples (and, in the finished document, as the enum of its `code`)."""
    every = [*codes, *_ALWAYS]
    if authenticated:
        every += _AUTHENTICATED
    if body:
        every += _BODY
    if keyed:
        every += _KEYED
    unknown = [code for code in every if code not in CODES]
    if unknown:
        raise ValueError(f"unregistered error codes: {unknown}")
    by_status: dict[int, list[str]] = {}
    for code in CODES:  # registry order, so documents are stable
        if code in every:
            by_status.setdefault(CODES[code].status, []).append(code)
    return {
        status: ResponseSpec(
            data_container=Problem,
            generate_examples=False,
            description=f"{_STATUS_PHRASES[status]} ({', '.join(found)})",
            media_type=PROBLEM_MEDIA_TYPE,
            examples=[Example(summary=code, value=example_problem(code)) for code in found],
        )
        for status, found in sorted(by_status.items())
    }


def write_response(result: WriteResult, model: type[T], location: str | None = None) -> Response[T]:
    """A write's answer: its stored body, decoded into the documented model, status kept.

    A 201 names what it created in `Location`; a replay says so in `Idempotent-Replayed`.
    """
    headers: dict[str, Any] = {"Idempotent-Replayed": "true"} if result.replayed else {}
    value = msgspec.json.decode(result.body, type=model)
    if result.status == 201 and location is not None:
        headers["Location"] = location.format(id=getattr(value, "id", ""))
    return Response(value, status_code=result.status, headers=headers)
