"""Communities and their policy, as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from timebank.http.types import Name, Request, Slug

# Upper bounds keep every amount, and every sum of a year's amounts, far inside bigint.
MAX_POLICY_MINUTES = 2**31 - 1

UnitMinutes = Annotated[int, msgspec.Meta(ge=1, le=1440)]
PolicyMinutes = Annotated[int, msgspec.Meta(ge=1, le=MAX_POLICY_MINUTES)]
OverdraftMinutes = Annotated[int, msgspec.Meta(ge=0, le=MAX_POLICY_MINUTES)]
# An IANA time zone name; that PostgreSQL knows it (pg_timezone_names) is checked by the database.
TimeZone = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$",
        description="IANA time zone name, e.g. Asia/Shanghai",
    ),
]
# A minimum age (years) for volunteering or redeeming; null: no rule.
MinAge = Annotated[int, msgspec.Meta(ge=0, le=150)]
# Whom a member may give hours to: anyone in the community, or linked relatives only.
GiftScope = Literal["community", "relatives"]


class Policy(Request, frozen=True):
    """How a community counts hours. Amounts are whole minutes.

    On creation every field may be left out (its default applies); PUT takes every field
    (PolicyReplace), PATCH any of them (PolicyChange). The three list the same fields.
    """

    unit_minutes: UnitMinutes = 15
    max_transaction_minutes: PolicyMinutes = 1440
    max_balance_minutes: PolicyMinutes = 90000
    overdraft_minutes: OverdraftMinutes = 0
    time_zone: TimeZone = "Asia/Shanghai"
    volunteer_min_age: MinAge | None = None
    redeem_min_age: MinAge | None = None
    gift_scope: GiftScope = "community"
    pool_requires_eligibility: bool = False


class PolicyReplace(Request, frozen=True):
    """A whole policy (PUT): every field is required."""

    unit_minutes: UnitMinutes
    max_transaction_minutes: PolicyMinutes
    max_balance_minutes: PolicyMinutes
    overdraft_minutes: OverdraftMinutes
    time_zone: TimeZone
    volunteer_min_age: MinAge | None
    redeem_min_age: MinAge | None
    gift_scope: GiftScope
    pool_requires_eligibility: bool


class PolicyChange(Request, frozen=True):
    """Some fields of a policy (PATCH): those given change, the others keep their value."""

    unit_minutes: UnitMinutes | UnsetType = UNSET
    max_transaction_minutes: PolicyMinutes | UnsetType = UNSET
    max_balance_minutes: PolicyMinutes | UnsetType = UNSET
    overdraft_minutes: OverdraftMinutes | UnsetType = UNSET
    time_zone: TimeZone | UnsetType = UNSET
    volunteer_min_age: MinAge | UnsetType | None = UNSET
    redeem_min_age: MinAge | UnsetType | None = UNSET
    gift_scope: GiftScope | UnsetType = UNSET
    pool_requires_eligibility: bool | UnsetType = UNSET

    def given(self) -> dict[str, object]:
        """The fields the request gave, by name."""
        return {name: value for name in self.__struct_fields__ if (value := getattr(self, name)) is not UNSET}


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
