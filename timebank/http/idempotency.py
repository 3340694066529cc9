"""Writes that move hours: Idempotency-Key handling around one SQL operation.

The SQL operation stores its response with the key in the same transaction as its effect. A write
that fails on a rule is remembered here, in a second transaction, together with its audit event;
a retry with the same key then gets the same answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog
from litestar import Request
from litestar.datastructures import State

from timebank.db import Database
from timebank.errors import CODES, DomainError, IdempotencyKeyRequiredError, InvalidRequestError
from timebank.http.context import Principal, request_id_of

log = structlog.get_logger(__name__)

MAX_KEY_CHARS = 200


def idempotency_key(request: Request[Any, Any, State]) -> str:
    """The Idempotency-Key header: 1–200 printable ASCII characters."""
    keys = request.headers.getall("idempotency-key", [])
    if not keys:
        raise IdempotencyKeyRequiredError("this write needs an Idempotency-Key header")
    if len(keys) > 1:
        raise InvalidRequestError(
            "send one Idempotency-Key header, not several",
            errors=[{"field": "Idempotency-Key", "message": "repeated header"}],
        )
    return checked_key(keys[0])


def checked_key(key: str) -> str:
    """The key, if it is 1–200 printable ASCII characters (from the header, or from a page's form)."""
    if not 1 <= len(key) <= MAX_KEY_CHARS or not all(" " <= ch <= "~" for ch in key):
        raise InvalidRequestError(
            f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable ASCII characters",
            errors=[{"field": "Idempotency-Key", "message": "1 to 200 printable ASCII characters"}],
        )
    return key


def request_hash(operation: str, target: object, body: msgspec.Struct | None) -> bytes:
    """What makes two requests 'the same': the operation, its path target and the decoded body."""
    digest = hashlib.sha256(operation.encode())
    digest.update(b"\0" + str(target).encode() + b"\0")
    if body is not None:
        digest.update(msgspec.json.encode(body))
    return digest.digest()


@dataclass(frozen=True)
class WriteResult:
    status: int
    body: bytes
    replayed: bool
    # Further columns the operation returned beside its answer (`returning` of execute_write).
    returned: dict[str, Any] = field(default_factory=dict)

    @property
    def is_problem(self) -> bool:
        return self.status >= 400


class ReplayedProblemError(Exception):
    """A remembered failure, answered again exactly as it was the first time."""

    def __init__(self, result: WriteResult) -> None:
        super().__init__(result.status)
        self.result = result


async def execute_write(
    db: Database,
    request: Request[Any, Any, State],
    principal: Principal,
    function: str,
    operation: str,
    target: object,
    body: msgspec.Struct | None,
    *args: Any,
    returning: tuple[str, ...] = (),
    key: str | None = None,
) -> WriteResult:
    """Call `function(actor, request_id, key, hash, *args)` and apply the idempotency contract.

    `returning` names further columns of the function's result to hand back (never stored with the key).
    `key`: the idempotency key when it does not come in a header (the pages carry it in their forms).
    """
    key = checked_key(key) if key is not None else idempotency_key(request)
    for value in args:
        # Minutes beyond PostgreSQL's bigint are out of every community's range.
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            raise DomainError("minutes are out of range", code="amount_out_of_range")
    digest = request_hash(operation, target, body)
    request_id = request_id_of(request)
    batched = await request.app.state.write_batches.submit(function, (principal.id, request_id, key, digest, *args))
    if batched is not None:
        return WriteResult(batched.status_code, batched.body.encode(), False)
    placeholders = ", ".join(f"${i}" for i in range(1, len(args) + 5))
    extra = "".join(f", {column}" for column in returning)
    query = f"select status_code, body::text as body, replayed{extra} from {function}({placeholders})"
    try:
        row = await db.fetchrow(query, principal.id, request_id, key, digest, *args)
    except DomainError as err:
        if err.code not in CODES or not CODES[err.code].remembered:
            raise
        problem = msgspec.json.encode(err.to_problem(request_id))
        action = "request.denied" if err.status in (401, 403) else "write.rejected"
        details = {"operation": operation, "code": err.code, "status": err.status, "target": str(target)}
        stored = await db.fetchrow(
            "select principal_id, request_hash, status_code, response::text as response"
            " from record_rejected_write($1, $2, $3, $4, $5, $6::text::jsonb, $7, $8::text::jsonb)",
            principal.id,
            request_id,
            key,
            digest,
            err.status,
            problem.decode(),
            action,
            msgspec.json.encode(details).decode(),
        )
        if stored is not None and stored["principal_id"] is not None:
            # The same key was used meanwhile by a request that got there first: answer as it did.
            if stored["request_hash"] != digest:
                raise DomainError(
                    "this Idempotency-Key was used with a different request", code="idempotency_key_reused"
                ) from None
            result = WriteResult(stored["status_code"], stored["response"].encode(), True)
            if result.is_problem:
                raise ReplayedProblemError(result) from None
            return result
        err.extra["audited"] = True
        raise
    assert row is not None
    result = WriteResult(
        row["status_code"], row["body"].encode(), row["replayed"], {column: row[column] for column in returning}
    )
    if result.replayed:
        log.info("idempotent_replay", operation=operation, status=result.status)
    if result.is_problem:
        raise ReplayedProblemError(result)
    return result
