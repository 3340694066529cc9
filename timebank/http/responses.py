"""Shared route pieces: the problem responses each route documents, and write responses."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Response
from litestar.openapi.datastructures import ResponseSpec

from timebank.errors import PROBLEM_MEDIA_TYPE, Problem
from timebank.http.idempotency import WriteResult

T = TypeVar("T")

_DESCRIPTIONS = {
    400: "Invalid request (invalid_request, idempotency_key_required)",
    401: "Missing or unknown token (unauthenticated)",
    403: "The caller lacks the right (forbidden)",
    404: "Not found, or outside the caller's reach (not_found)",
    409: "Conflict with the current state",
    413: "Request body too large (request_too_large)",
    422: "A ledger rule refused the request",
    429: "Too many failed authentications from this address (too_many_requests; see Retry-After)",
    503: "Transient conflict or database unavailable (conflict_retry, unavailable)",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem+json answers a route can give."""
    every = {400, 401, 429, 503, *statuses}
    return {
        status: ResponseSpec(data_container=Problem, description=_DESCRIPTIONS[status], media_type=PROBLEM_MEDIA_TYPE)
        for status in sorted(every)
    }


READ = problems(403, 404)
WRITE = problems(403, 404, 409, 413, 422)


def write_response(result: WriteResult, model: type[T]) -> Response[T]:
    """A write's answer: its stored body, decoded into the documented model, status kept."""
    headers: dict[str, Any] = {"Idempotent-Replayed": "true"} if result.replayed else {}
    return Response(msgspec.json.decode(result.body, type=model), status_code=result.status, headers=headers)
