"""Members as the API shows them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from timebank.http.types import CalendarDate, MemberRole, Name, Phone, PrincipalRole, Reason, Request, ShortText

Roles = Annotated[
    list[MemberRole],
    msgspec.Meta(min_length=1, max_length=4, extra_json_schema={"extra": {"unique_items": True}}),
]
# A PIN: exactly six digits.
Pin = Annotated[str, msgspec.Meta(min_length=6, max_length=6, pattern=r"^[0-9]{6}$", description="six digits")]
# What a relative is to the member: a parent link is a child link seen from the other side.
Relation = Literal["parent", "child", "spouse", "sibling", "grandparent", "grandchild", "other"]


class MemberCreate(Request, frozen=True):
    display_name: Name
    roles: Roles
    grid: ShortText | None = None
    birth_date: CalendarDate | None = None
    phone: Phone | None = None
    external_ref: ShortText | None = None


class Member(msgspec.Struct, frozen=True):
    id: uuid.UUID
    community: str
    display_name: str
    roles: list[MemberRole]
    grid: str | None
    account_id: uuid.UUID
    created_at: datetime
    # Short number unique in the community, given in order ("000042"), for cards and passbooks.
    member_no: str
    # May receive hours from the pool when the policy's pool_requires_eligibility is on.
    pool_eligible: bool
    # Whether a PIN is set (never the PIN or its hash).
    has_pin: bool
    birth_date: date | None = None
    phone: str | None = None
    external_ref: str | None = None


class MemberPage(msgspec.Struct, frozen=True):
    items: list[Member]
    next_cursor: str | None


class IssuedToken(msgspec.Struct, frozen=True):
    token: str
    member_id: uuid.UUID


class Me(msgspec.Struct, frozen=True):
    principal_id: uuid.UUID
    roles: list[PrincipalRole]
    member: Member | None
    community: str | None


class MemberChange(Request, frozen=True):
    """PATCH /v1/members/{id}: the fields given change; `reason` is required and audited."""

    reason: Reason
    display_name: Name | UnsetType = UNSET
    grid: ShortText | UnsetType | None = UNSET
    birth_date: CalendarDate | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    external_ref: ShortText | UnsetType | None = UNSET
    roles: Roles | UnsetType = UNSET
    pool_eligible: bool | UnsetType = UNSET

    def given(self) -> dict[str, object]:
        """The member fields the request gave (not the reason), by name."""
        return {
            name: value
            for name in self.__struct_fields__
            if name != "reason" and (value := getattr(self, name)) is not UNSET
        }


class PinSet(Request, frozen=True):
    """A new PIN; the member itself also gives its current one."""

    pin: Pin
    current_pin: Pin | None = None


class RelativeCreate(Request, frozen=True):
    relative_member_id: uuid.UUID
    relation: Relation


class Relative(msgspec.Struct, frozen=True):
    """A linked relative, seen from the member: `relation` is what the relative is to the member."""

    member_id: uuid.UUID
    display_name: str
    relation: Relation
    since: datetime


class RelativePage(msgspec.Struct, frozen=True):
    items: list[Relative]
    next_cursor: str | None
