"""HTTP routes for tokens: a member's list, and revocation."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from timebank.auth import service
from timebank.auth.models import Token, TokenPage, TokenRevoke
from timebank.auth.revocations import RevocationListener
from timebank.http.context import Caller, Db
from timebank.http.idempotency import execute_write
from timebank.http.pagination import decode_cursor, next_cursor, page_limit
from timebank.http.responses import problems, write_response
from timebank.http.types import Cursor, Limit
from timebank.ledger.routes import IdempotencyKey


@get(
    "/v1/members/{member_id:uuid}/tokens",
    responses=problems("invalid_request", "forbidden", "not_found", "invalid_cursor"),
    summary="A member's tokens, newest first",
)
async def list_member_tokens(
    member_id: FromPath[uuid.UUID],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    limit: Limit = None,
    cursor: Cursor = None,
) -> TokenPage:
    settings = request.app.state.settings
    size = page_limit(limit, settings.page_size_default, settings.page_size_max)
    items, rows = await service.list_member_tokens(db, principal, member_id, decode_cursor(cursor), size)
    return TokenPage(items=items, next_cursor=next_cursor(rows, size, "seq"))


@post(
    "/v1/tokens/{token_id:uuid}/revoke",
    status_code=200,
    responses=problems("forbidden", "not_found", body=True, keyed=True),
    summary="Revoke a token for good",
)
async def revoke_token(
    token_id: FromPath[uuid.UUID],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    data: JSONBody[TokenRevoke | None] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response[Token]:
    """An admin; a coordinator of the owner's community (members' tokens only); the token's owner.
    Answered once every process of the service has forgotten the token; revoking a revoked token
    answers its record unchanged."""
    listener: RevocationListener = request.app.state.revocations
    with listener.confirmations.watching(token_id) as watch:
        result = await execute_write(
            db, request, principal, "revoke_token", "token_revoke", token_id, None, token_id, returning=("listeners",)
        )
        if not result.replayed:
            await listener.revoked_here(token_id, result.returned.get("listeners") or (), watch)
    return write_response(result, Token)


router = Router(path="/", route_handlers=[list_member_tokens, revoke_token], tags=["tokens"])
