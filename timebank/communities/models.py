"""Communities and their policy, as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from timebank.http.types import Name, Request, Slug

# Upper bounds keep every amount, and every sum of a year's amounts, far inside bigint.
MAX_POLICY_MINUTES = 2**31 - 1


class Policy(Request, frozen=True):
    """How a community counts hours. Amounts are whole minutes."""

    unit_minutes: Annotated[int, msgspec.Meta(ge=1, le=1440)] = 15
    max_transaction_minutes: Annotated[int, msgspec.Meta(ge=1, le=MAX_POLICY_MINUTES)] = 1440
    max_balance_minutes: Annotated[int, msgspec.Meta(ge=1, le=MAX_POLICY_MINUTES)] = 90000
    overdraft_minutes: Annotated[int, msgspec.Meta(ge=0, le=MAX_POLICY_MINUTES)] = 0


class CommunityCreate(Request, frozen=True):
    slug: Slug
    name: Name
    parent_slug: Slug | None = None
    policy: Policy | None = None


class SystemAccounts(msgspec.Struct, frozen=True):
    issuance: uuid.UUID
    pool: uuid.UUID
    services: uuid.UUID


class Community(msgspec.Struct, frozen=True):
    id: uuid.UUID
    slug: str
    name: str
    parent_slug: str | None
    policy: Policy
    accounts: SystemAccounts
    created_at: datetime


class CommunityPage(msgspec.Struct, frozen=True):
    items: list[Community]
    next_cursor: str | None
