"""Members' PINs: Argon2id hashes made and checked in a worker thread, never on the event loop.

The PIN itself goes no further than this module: the database receives only its hash, and no
response, log line or audit event carries either.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from litestar import Request
from litestar.datastructures import State

from timebank.db import Database
from timebank.errors import ForbiddenError, TooManyAttemptsError
from timebank.http.context import Principal, request_id_of
from timebank.http.idempotency import WriteResult, execute_write
from timebank.members.models import PinSet

# argon2-cffi's defaults are Argon2id with RFC 9106's low-memory profile (t=3, m=64 MiB, p=4).
_HASHER = PasswordHasher()


async def hash_pin(pin: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, pin)


def _matches(pin_hash: str, pin: str) -> bool:
    try:
        return _HASHER.verify(pin_hash, pin)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def pin_matches(pin_hash: str, pin: str) -> bool:
    return await asyncio.to_thread(_matches, pin_hash, pin)


def _locked(locked_until: datetime) -> TooManyAttemptsError:
    seconds = max(1, int((locked_until - datetime.now(UTC)).total_seconds()) + 1)
    return TooManyAttemptsError(
        f"too many wrong PINs for this member; PIN changes are locked until {locked_until.isoformat()}", seconds
    )


async def set_pin(
    db: Database, request: Request[Any, Any, State], principal: Principal, member_id: uuid.UUID, data: PinSet,
    *, key: str | None = None,
) -> WriteResult:  # fmt: skip
    """Set the member's PIN. The member itself proves its current PIN first (wrong ones are counted
    and lock further attempts); staff need not. A retry of a change already made (its new PIN is
    now the current one) is let through to the idempotency contract, which replays it. `key`: as
    execute_write's."""
    current_ok = False
    community_id = principal.community_id
    self_only = principal.member_id == member_id and not (
        community_id is not None and principal.is_staff_of(community_id, "coordinator")
    )
    if self_only:
        state = await db.fetchrow(
            "select pin_hash, locked_until from member_pin_state($1, $2)", principal.id, member_id
        )
        if state is not None:
            if state["locked_until"] is not None and state["locked_until"] > datetime.now(UTC):
                raise _locked(state["locked_until"])
            if data.current_pin is None:
                raise ForbiddenError(
                    "a member changing its own PIN gives its current_pin",
                    errors=[{"field": "$.current_pin", "message": "required when members change their own PIN"}],
                )
            current_ok = await pin_matches(state["pin_hash"], data.current_pin) or await pin_matches(
                state["pin_hash"], data.pin
            )
            if not current_ok:
                locked_until = await db.fetchval(
                    "select record_pin_failure($1, $2, $3)", principal.id, request_id_of(request), member_id
                )
                if locked_until is not None:
                    raise _locked(locked_until)
                # The failure wrote its own audit event (member.pin_failed).
                raise ForbiddenError("current_pin does not match", audited=True)
    pin_hash = await hash_pin(data.pin)
    # The request's identity for the Idempotency-Key leaves the PINs out: a digest of six digits
    # would give them away.
    return await execute_write(
        db, request, principal, "set_member_pin", "member_pin", member_id, None, member_id, pin_hash, current_ok,
        key=key,
    )  # fmt: skip
