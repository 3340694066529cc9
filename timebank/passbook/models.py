"""What a passbook holds: the member, its entries oldest first, and the proofs printed on its pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class PassbookEntry:
    transaction_id: uuid.UUID
    kind: str
    minutes: int
    balance_after_minutes: int
    description: str
    # The other side of a two-posting transaction (a member's name or a system account's kind).
    counterparty_name: str | None
    # The day it was booked, in the community's time zone.
    day: date
    # Its place in the public log; None while the sealer has not logged it yet.
    leaf_index: int | None


@dataclass(frozen=True)
class Checkpoint:
    """The signed checkpoint every page's proof is against (the latest when the passbook was made)."""

    tree_size: int
    root_hash: bytes
    note: str


@dataclass(frozen=True)
class Page:
    entries: list[PassbookEntry]
    # The C2SP tlog-proof of the page's last logged entry, and that entry; None if none is logged.
    proof_entry: PassbookEntry | None = None
    proof: str | None = None
    # The same proof without the leaf bytes (shorter, for a QR code the whole one would overfill).
    short_proof: str | None = None


@dataclass(frozen=True)
class Passbook:
    member_id: uuid.UUID
    display_name: str
    member_no: str
    community_name: str
    # The period asked for, as days in the community's time zone (None: from the first / to now).
    first_day: date | None
    last_day: date | None
    # The balance before the first entry shown (0 unless `from` was given).
    opening_minutes: int
    printed_at: datetime
    checkpoint: Checkpoint | None
    pages: list[Page] = field(default_factory=list)
