"""Bearer tokens: 256 random bits shown once; only their SHA-256 is stored."""

from __future__ import annotations

import secrets

from timebank.http.context import hash_token

TOKEN_PREFIX = "tb_"  # noqa: S105 -- a recognisable prefix for secret scanners, not a secret.


def new_token() -> tuple[str, bytes]:
    """A fresh token and the hash that is stored for it."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)
