"""`python -m bench.write_cost`, run tiny so that it keeps working: a variant's effect shows in its numbers."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.write_cost import run


async def test_a_variant_is_measured_beside_the_schema_as_migrated(server_url: str, tmp_path: Path) -> None:
    # A variant whose effect is certain: a fourth index on transactions makes every credit write more WAL.
    variant = tmp_path / "more.sql"
    variant.write_text("create index transactions_wide on transactions (community_id, description, request_id);")
    args = argparse.Namespace(
        variant=variant, ledger=500, credits=320, batch=32, rounds=1, communities=4, volunteers=20, keep=False
    )
    report = await run(args, server_url)
    for label in ("A", "B"):
        assert report[label]["cpu_us_per_credit"] >= 0
        assert report[label]["wal_bytes_per_credit"] > 0
    assert report["B"]["wal_bytes_per_credit"] > report["A"]["wal_bytes_per_credit"]
