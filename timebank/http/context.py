"""Per-request context: the request id and the authenticated principal."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import msgspec
import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler

from timebank.auth.throttle import AuthThrottle, TokenCache
from timebank.db import Database
from timebank.errors import TooManyRequestsError, UnauthenticatedError
from timebank.replicas.positions import READ_POSITION_KEY


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: an admin, an auditor, or a member holding one or more roles."""

    id: uuid.UUID
    kind: str
    roles: tuple[str, ...]
    community_id: uuid.UUID | None
    member_id: uuid.UUID | None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def is_staff_of(self, community_id: uuid.UUID, *roles: str) -> bool:
        """Admin anywhere; otherwise one of `roles` in that community (global auditors read all)."""
        if self.is_admin or ("auditor" in roles and self.reads_everything):
            return True
        return self.community_id == community_id and any(r in self.roles for r in roles)

    @property
    def reads_everything(self) -> bool:
        """Admins, and auditors created without a community, may read every community."""
        return self.is_admin or (self.kind == "auditor" and self.community_id is None)

    def can_see_community(self, community_id: uuid.UUID) -> bool:
        return self.reads_everything or self.community_id == community_id


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def request_id_of(request: Request[Any, Any, State]) -> str:
    rid = request.scope.get("state", {}).get("request_id")
    return str(rid) if rid else "-"


async def provide_db(state: State, request: Request[Any, Any, State]) -> Database:
    """The primary; for a read (GET, HEAD) with read replicas, the database that may answer it."""
    db: Database = state.db
    reads = state.get("reads")
    if reads is None:
        return db
    return reads.database_for(request.scope)  # type: ignore[no-any-return]


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: authenticate the bearer token before anything else about the request is looked at."""
    await _authenticate(connection)


async def provide_principal(request: Request[Any, Any, State], db: Db) -> Principal:
    """The caller, as the `authenticate` guard found it.

    It takes `db` only to be resolved after it: Litestar resolves independent dependencies in a
    task group of their own, which costs more than both of these together.
    """
    principal = request.scope.get("state", {}).get("principal")
    if isinstance(principal, Principal):
        return principal
    return await _authenticate(request)


async def _authenticate(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """401 unauthenticated when the token is missing or unknown."""
    headers = request.headers.getall("authorization", [])
    if len(headers) > 1:
        raise UnauthenticatedError("send one Authorization header, not several")
    header = headers[0] if headers else ""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        raise UnauthenticatedError("a valid bearer token is required")
    return await principal_for_token(request, token)


def client_address(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    """Whom the failed-authentication throttle counts against (the API's tokens and the pages' PINs)."""
    return request.client.host if request.client else "unknown"


async def principal_for_token(request: ASGIConnection[Any, Any, Any, Any], token: str) -> Principal:
    """Who a token stands for (a bearer token, or the pages' session cookie, which holds one); 401
    when unknown or revoked, 429 after too many failures from the address."""
    digest = hash_token(token)
    state = request.app.state
    cache: TokenCache = state.token_cache
    principal = cache.get(digest)
    if not isinstance(principal, Principal):
        address = client_address(request)
        throttle: AuthThrottle = state.auth_throttle
        if not throttle.allows(address):
            raise TooManyRequestsError(
                "too many failed authentications from this address", throttle.retry_after_seconds(address)
            )
        db: Database = state.db
        # Read before the lookup: a revocation heard while it runs keeps its answer out of the cache.
        generation = cache.generation
        row = await db.fetchrow("select * from authenticate_token($1)", digest)
        if row is None:
            throttle.record_failure(address)
            raise UnauthenticatedError("a valid bearer token is required")
        principal = Principal(
            id=row["id"],
            kind=row["kind"],
            roles=tuple(row["roles"]),
            community_id=row["community_id"],
            member_id=row["member_id"],
        )
        cache.put(digest, principal, row["token_id"], generation)
        reads = state.get("reads")
        if reads is not None:
            # With read replicas: the caller's reads go only where its token and member are replayed,
            # in this request (which needs not ask for the position again) and in any process after.
            position = await reads.note_position(str(principal.id))
            if position is not None:
                request.scope.setdefault("state", {})[READ_POSITION_KEY] = position
    scope_state = request.scope.setdefault("state", {})
    scope_state["principal"] = principal
    scope_state["principal_id"] = str(principal.id)
    structlog.contextvars.bind_contextvars(principal=str(principal.id))
    return principal


# Route parameters filled by the app's dependencies (see app.py).
Db = NamedDependency[Database]
Caller = NamedDependency[Principal]
