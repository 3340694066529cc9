"""Leaf bytes are RFC 8785 canonical JSON, as the rfc8785 library writes it, for any content."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import msgspec
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from timebank.ledger.models import Posting
from timebank.log.leaf import LeafV1, leaf_bytes, leaf_from_served

texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
leaves = st.builds(
    LeafV1,
    id=st.uuids(),
    community=texts,
    kind=st.sampled_from(["credit", "transfer", "reversal"]),
    postings=st.lists(st.builds(Posting, account_id=st.uuids(), minutes=st.integers(-(10**9), 10**9)), max_size=4),
    description=texts,
    service_date=st.none() | st.dates(min_value=date(1900, 1, 1), max_value=date(2999, 12, 31)),
    created_at=st.datetimes(
        datetime(1900, 1, 2), datetime(2999, 12, 30), timezones=st.just(timezone(timedelta(hours=8))) | st.just(UTC)
    ),
    created_by=st.uuids(),
    on_behalf_of=st.none() | st.uuids(),
    reverses=st.none() | st.uuids(),
    hold_id=st.none() | st.uuids(),
    service_request_id=st.none() | st.uuids(),
)


@given(leaves)
def test_leaf_bytes_are_rfc8785_of_the_leaf(leaf: LeafV1) -> None:
    normal = msgspec.structs.replace(leaf, created_at=leaf.created_at.astimezone(UTC))
    assert leaf_bytes(leaf) == rfc8785.dumps(msgspec.to_builtins(normal))


def test_the_leaf_leaves_out_what_may_change_and_what_is_added_later() -> None:
    served = {
        "id": str(uuid.uuid4()), "community": "zixuan", "kind": "credit",
        "postings": [{"account_id": str(uuid.uuid4()), "minutes": 60}], "description": "陪老人散步",
        "service_date": "2026-11-01", "created_at": "2026-11-01T08:30:00.5+08:00", "created_by": str(uuid.uuid4()),
        "created_by_name": "周彦芳", "on_behalf_of": None, "reverses": None, "reversed_by": str(uuid.uuid4()),
        "hold_id": None, "service_request_id": str(uuid.uuid4()),
    }  # fmt: skip
    leaf = leaf_from_served(served)
    # A renamed creator, a later reversal and a field the API may gain later leave the leaf as it was.
    renamed = leaf_from_served(served | {"created_by_name": "周秀英", "reversed_by": None, "rating": 5})
    assert leaf == renamed
    # The service request a transaction pays for is part of it (set when it is made, never changed).
    assert f'"service_request_id":"{served["service_request_id"]}"'.encode() in leaf
    assert b"created_by_name" not in leaf
    assert b"reversed_by" not in leaf
    assert b'"created_at":"2026-11-01T00:30:00.500000Z"' in leaf
