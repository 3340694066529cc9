"""The bytes of a leaf: a fixed, versioned set of a transaction's fields as RFC 8785 canonical JSON.

Leaf format 1 is the transaction as GET /v1/transactions/{id} serves it, without `reversed_by` (it
appears when the transaction is reversed) and without `created_by_name` (a display name, which can
change). Fields the API gains later do not join format 1, so a leaf never changes once logged; a new
format would get a new number, recorded per leaf (log_leaves.leaf_format).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import msgspec
import rfc8785

from timebank.ledger.models import Posting, TransactionKind

LEAF_FORMAT = 1


class LeafV1(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: uuid.UUID
    community: str
    kind: TransactionKind
    postings: list[Posting]
    description: str
    service_date: date | None
    created_at: datetime
    created_by: uuid.UUID
    on_behalf_of: uuid.UUID | None
    reverses: uuid.UUID | None
    hold_id: uuid.UUID | None


FIELDS = frozenset(LeafV1.__struct_fields__)
_decoder = msgspec.json.Decoder(LeafV1)


def leaf_bytes(leaf: LeafV1) -> bytes:
    """RFC 8785 canonical JSON of the leaf; created_at in UTC, written as the API writes it."""
    normal = msgspec.structs.replace(leaf, created_at=leaf.created_at.astimezone(UTC))
    return rfc8785.dumps(msgspec.to_builtins(normal))


def leaf_from_json(text: str | bytes) -> bytes:
    """The leaf bytes of a transaction's leaf JSON (as _log_leaf_json gives it)."""
    return leaf_bytes(_decoder.decode(text))


def leaf_from_served(transaction: dict[str, Any]) -> bytes:
    """The leaf bytes of a transaction as the API served it (other fields are left out)."""
    fields = {key: value for key, value in transaction.items() if key in FIELDS}
    return leaf_bytes(msgspec.convert(fields, LeafV1))
