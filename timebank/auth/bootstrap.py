"""What the running service cannot do: mint admins and auditors, revoke any token as the system.

The service role may issue member tokens (coordinators do, through the API) but not mint an
admin: that takes the owner connection that only `timebank serve` start-up and the CLI hold. The
CLI's `token revoke` and `token list` use the same connection.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from timebank.auth.revocations import CONFIRM_SECONDS, EVICTED_CHANNEL, Confirmations
from timebank.http.context import hash_token


async def _owner(owner_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(owner_url, server_settings={"search_path": "timebank"})


async def ensure_admin_token(owner_url: str, token: str) -> uuid.UUID:
    """Guarantee an admin principal whose token is `token` (TIMEBANK_ADMIN_TOKEN); returns its id."""
    conn = await _owner(owner_url)
    try:
        principal: uuid.UUID = await conn.fetchval(
            "select ensure_admin_token($1, $2)", hash_token(token), "startup-" + uuid.uuid4().hex
        )
    finally:
        await conn.close()
    return principal


async def create_principal(owner_url: str, kind: str, community_slug: str | None, token: str) -> uuid.UUID:
    """A new admin, or an auditor of one community (or of all when `community_slug` is None)."""
    conn = await _owner(owner_url)
    try:
        principal: uuid.UUID = await conn.fetchval(
            "select create_principal_token($1, $2, $3, $4)",
            kind,
            community_slug,
            hash_token(token),
            "cli-" + uuid.uuid4().hex,
        )
    finally:
        await conn.close()
    return principal


@dataclass(frozen=True)
class RevokedToken:
    """What `timebank token revoke` did, and whose token it was."""

    token_id: uuid.UUID
    revoked_now: bool
    revoked_at: datetime
    kind: str  # admin, auditor or member
    principal_id: uuid.UUID
    member_id: uuid.UUID | None
    display_name: str | None
    community: str | None
    unconfirmed: int  # processes of the service that did not confirm forgetting it in time


@dataclass(frozen=True)
class TokenRow:
    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


_WHOSE = """
    select t.id, p.id as principal_id, p.kind, p.member_id, m.display_name, c.slug as community, r.revoked_at
      from tokens t
      join principals p on p.id = t.principal_id
      left join members m on m.id = p.member_id
      left join communities c on c.id = coalesce(m.community_id, p.community_id)
      left join token_revocations r on r.token_id = t.id
     where t.id = $1
"""


async def revoke_token(owner_url: str, token_id: uuid.UUID) -> RevokedToken | None:
    """Revoke any token, recorded as system; None when no token has this id.

    Returns once every process of the service has confirmed forgetting it, or after CONFIRM_SECONDS.
    """
    conn = await _owner(owner_url)
    try:
        confirmations = Confirmations()
        await conn.add_listener(EVICTED_CHANNEL, confirmations.on_notification)
        if await conn.fetchval("select count(*) from tokens where id = $1", token_id) == 0:
            return None
        with confirmations.watching(token_id) as watch:
            done = await conn.fetchrow(
                "select revoked_now, listeners from revoke_token_as_system($1, $2)", "cli-" + uuid.uuid4().hex, token_id
            )
            assert done is not None
            missing = await watch.wait_for(done["listeners"], CONFIRM_SECONDS)
        row = await conn.fetchrow(_WHOSE, token_id)
    finally:
        await conn.close()
    assert row is not None
    return RevokedToken(
        token_id=token_id,
        revoked_now=done["revoked_now"],
        revoked_at=row["revoked_at"],
        kind=row["kind"],
        principal_id=row["principal_id"],
        member_id=row["member_id"],
        display_name=row["display_name"],
        community=row["community"],
        unconfirmed=len(missing),
    )


async def member_tokens(owner_url: str, member_id: uuid.UUID, limit: int = 500) -> list[TokenRow] | None:
    """The member's tokens, newest first (at most `limit`); None when there is no such member."""
    conn = await _owner(owner_url)
    try:
        if await conn.fetchval("select count(*) from members where id = $1", member_id) == 0:
            return None
        rows = await conn.fetch("select * from member_tokens($1, null, $2)", member_id, limit)
    finally:
        await conn.close()
    return [TokenRow(r["id"], r["created_at"], r["last_used_at"], r["revoked_at"]) for r in rows]
