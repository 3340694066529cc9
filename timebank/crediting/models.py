"""Credit batches as the API shows them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec

from timebank.http.types import CalendarDate, Description, Minutes, Request, Slug
from timebank.ledger.models import Transaction

MAX_BATCH_ITEMS = 500


class CreditItem(Request, frozen=True):
    member_id: uuid.UUID
    minutes: Minutes


class CreditBatchCreate(Request, frozen=True):
    """One activity's credits: 1 to 500 items, each member at most once, on one service date."""

    community: Slug
    service_date: CalendarDate
    credits: Annotated[list[CreditItem], msgspec.Meta(min_length=1, max_length=MAX_BATCH_ITEMS)]
    description: Description = ""


class CreditBatch(msgspec.Struct, frozen=True):
    id: uuid.UUID
    community: str
    service_date: date
    description: str
    # One credit transaction per item, in the items' order.
    transactions: list[Transaction]
    total_minutes: int
    created_at: datetime
    created_by: uuid.UUID
