"""Principals the running service cannot make: admins and auditors, created with the owner's rights.

The service role may issue member tokens (coordinators do, through the API) but not mint an
admin: that takes the owner connection that only `timebank serve` start-up and the CLI hold.
"""

from __future__ import annotations

import uuid

import asyncpg

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
