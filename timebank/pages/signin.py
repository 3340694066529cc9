"""PIN sign-in: the same Argon2id check and lockout as PIN changes (members/pins.py, 60_people.sql)."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from argon2 import PasswordHasher

from timebank.auth.revocations import RevocationListener
from timebank.auth.tokens import new_token
from timebank.db import Database
from timebank.http.context import hash_token
from timebank.members.pins import pin_matches


@cache
def _dummy_hash() -> str:
    """A hash no PIN matches in practice, checked when no member matches, so both answers take as long."""
    return PasswordHasher().hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class SignIn:
    token: str | None = None
    locked_seconds: int | None = None


def _seconds_until(moment: datetime) -> int:
    return max(1, int((moment - datetime.now(UTC)).total_seconds()) + 1)


async def sign_in(db: Database, request_id: str, community: str, login: str, pin: str) -> SignIn:
    """A session token when the PIN is right; the lock's remaining seconds when the member is locked
    (before or because of this attempt); neither when it does not sign in."""
    state = await db.fetchrow(
        "select member_id, pin_hash, locked_until from sign_in_pin_state($1, $2)", community, login
    )
    if state is None:
        await pin_matches(await asyncio.to_thread(_dummy_hash), pin)  # the answer's time says nothing
        return SignIn()
    member_id: uuid.UUID = state["member_id"]
    if state["locked_until"] is not None and state["locked_until"] > datetime.now(UTC):
        return SignIn(locked_seconds=_seconds_until(state["locked_until"]))
    if not await pin_matches(state["pin_hash"], pin):
        locked_until = await db.fetchval("select record_sign_in_failure($1, $2)", request_id, member_id)
        return SignIn(locked_seconds=_seconds_until(locked_until) if locked_until is not None else None)
    token, digest = new_token()
    locked_until = await db.fetchval("select sign_in_with_pin($1, $2, $3)", request_id, member_id, digest)
    if locked_until is not None:
        return SignIn(locked_seconds=_seconds_until(locked_until))
    return SignIn(token=token)


async def sign_out(db: Database, listener: RevocationListener, request_id: str, token: str) -> None:
    """Revoke the session's token, and answer only once every process of the service has forgotten
    it (as `POST /v1/tokens/{id}/revoke` does): a copied cookie replayed a moment later is refused."""
    digest = hash_token(token)
    session = await db.fetchrow("select token_id from authenticate_token($1)", digest)
    if session is None:
        return  # already revoked or expired: nothing is left to forget
    token_id = session["token_id"]
    # Watch before revoking, so no process's confirmation is missed.
    with listener.confirmations.watching(token_id) as watch:
        row = await db.fetchrow("select listeners from sign_out($1, $2)", request_id, digest)
        assert row is not None
        await listener.revoked_here(token_id, row["listeners"] or (), watch)
