"""Transactions and their audit events get time-ordered keys (UUIDv7), so that new rows land on the
newest leaf of every index that holds them (sql/migrations/0014_time_ordered_keys.sql)."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from tests.sql.support import Ledger
from tests.sql.test_batch_writes import key, post_credits


def unix_ms(key_: uuid.UUID) -> int:
    """The millisecond clock in a UUIDv7's first 48 bits."""
    return key_.int >> 80


async def test_uuid_v7_is_version_7_variant_rfc_and_carries_the_clock(owner: asyncpg.Connection) -> None:
    before = await owner.fetchval("select floor(extract(epoch from clock_timestamp()) * 1000)::bigint")
    keys: list[uuid.UUID] = [r[0] for r in await owner.fetch("select uuid_v7() from generate_series(1, 500)")]
    after = await owner.fetchval("select floor(extract(epoch from clock_timestamp()) * 1000)::bigint")
    assert len(set(keys)) == 500
    assert {k.version for k in keys} == {7}
    assert {k.variant for k in keys} == {uuid.RFC_4122}
    assert all(before <= unix_ms(k) <= after for k in keys)
    # Within one millisecond the rest is random: 74 bits, so no two of these share them.
    assert len({k.int & ((1 << 74) - 1) for k in keys}) == 500


async def test_every_path_that_writes_a_transaction_gives_it_and_its_event_a_time_ordered_key(
    ledger: Ledger, conn: asyncpg.Connection, owner: asyncpg.Connection
) -> None:
    community = await ledger.community()
    anna, ben = await ledger.member(community, "volunteer"), await ledger.member(community, "volunteer")
    alone = uuid.UUID((await ledger.credit(anna, 30)).body["id"])
    batched = [uuid.UUID(b["id"]) for b in (await post_credits(conn, [(ledger.actor, ben.id, 15, key())])).values()]
    written = [alone, *batched]
    assert {t.version for t in written} == {7}
    events = await owner.fetch(
        "select id, subject_id from audit_events where action = 'transaction.created' and subject_id = any($1)",
        written,
    )
    assert len(events) == len(written)
    assert {e["id"].version for e in events} == {7}
    # The clock in each key is the moment the row was made.
    rows = await owner.fetch("select id, created_at from transactions where id = any($1)", written)
    for row in rows:
        made = dt.datetime.fromtimestamp(unix_ms(row["id"]) / 1000, dt.UTC)
        assert abs(made - row["created_at"]) < dt.timedelta(seconds=5)
