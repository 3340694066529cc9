"""Accounts, entries and transactions as the API shows them, and the write requests."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

import msgspec

from timebank.http.types import CalendarDate, Description, Minutes, Reason, Request

AccountKind = Literal["member", "issuance", "pool", "services"]
TransactionKind = Literal["credit", "redemption", "transfer", "donation", "pool_grant", "reversal", "hold_capture"]


class Account(msgspec.Struct, frozen=True):
    id: uuid.UUID
    community: str
    kind: AccountKind
    member_id: uuid.UUID | None
    balance_minutes: int
    held_minutes: int
    available_minutes: int
    floor_minutes: int | None
    cap_minutes: int | None
    version: int
    updated_at: datetime


class Entry(msgspec.Struct, frozen=True):
    transaction_id: uuid.UUID
    kind: TransactionKind
    minutes: int
    balance_after_minutes: int
    description: str
    service_date: date | None
    # The other side of a two-posting transaction: a member (id and display name as it is now), or a
    # system account (member id null, name its kind: issuance, pool, services). Both null when the
    # transaction has more than two postings.
    counterparty_member_id: uuid.UUID | None
    counterparty_name: str | None
    created_at: datetime


class EntryPage(msgspec.Struct, frozen=True):
    items: list[Entry]
    next_cursor: str | None


class Balance(msgspec.Struct, frozen=True):
    account_id: uuid.UUID
    balance_minutes: int
    as_of: datetime


class Posting(msgspec.Struct, frozen=True):
    account_id: uuid.UUID
    minutes: int


class Transaction(msgspec.Struct, frozen=True):
    id: uuid.UUID
    community: str
    kind: TransactionKind
    postings: list[Posting]
    description: str
    service_date: date | None
    created_at: datetime
    created_by: uuid.UUID
    # The creating principal's member display name, or `admin`, `auditor`, `system`.
    created_by_name: str
    on_behalf_of: uuid.UUID | None
    reverses: uuid.UUID | None
    reversed_by: uuid.UUID | None
    hold_id: uuid.UUID | None
    # The service request this transaction pays for (null elsewhere). Always sent; the default only
    # lets answers stored before the field existed decode.
    service_request_id: uuid.UUID | None = None


class TransactionPage(msgspec.Struct, frozen=True):
    items: list[Transaction]
    next_cursor: str | None


class CreditCreate(Request, frozen=True):
    member_id: uuid.UUID
    minutes: Minutes
    service_date: CalendarDate
    description: Description = ""


class RedemptionCreate(Request, frozen=True):
    member_id: uuid.UUID
    minutes: Minutes
    description: Description = ""
    provider_member_id: uuid.UUID | None = None


class TransferCreate(Request, frozen=True):
    from_member_id: uuid.UUID
    minutes: Minutes
    to_member_id: uuid.UUID | None = None
    to_pool: bool = False
    description: Description = ""


class PoolGrantCreate(Request, frozen=True):
    member_id: uuid.UUID
    minutes: Minutes
    description: Description = ""


class ReversalCreate(Request, frozen=True):
    reason: Reason
