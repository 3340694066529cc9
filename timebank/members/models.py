"""Members as the API shows them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec

from timebank.http.types import CalendarDate, MemberRole, Name, Phone, PrincipalRole, Request, ShortText


class MemberCreate(Request, frozen=True):
    display_name: Name
    roles: Annotated[
        list[MemberRole],
        msgspec.Meta(min_length=1, max_length=4, extra_json_schema={"extra": {"unique_items": True}}),
    ]
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
