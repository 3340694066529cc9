"""Holds: hours reserved for a booked service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec

from timebank.http.types import AwareDatetime, Description, Minutes, Request

HoldStatus = Literal["pending", "captured", "released", "expired"]


class HoldCreate(Request, frozen=True):
    member_id: uuid.UUID
    minutes: Minutes
    description: Description = ""
    expires_at: AwareDatetime | None = None


class HoldCapture(Request, frozen=True):
    minutes: Minutes | None = None
    provider_member_id: uuid.UUID | None = None


class HoldRelease(Request, frozen=True):
    """Releasing takes no fields; an empty object or no body at all."""


class Hold(msgspec.Struct, frozen=True):
    id: uuid.UUID
    account_id: uuid.UUID
    member_id: uuid.UUID
    minutes: int
    description: str
    status: HoldStatus
    expires_at: datetime
    created_at: datetime
    resolved_at: datetime | None
    transaction_id: uuid.UUID | None


class HoldPage(msgspec.Struct, frozen=True):
    items: list[Hold]
    next_cursor: str | None
