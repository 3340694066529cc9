"""`timebank verify`, the real command: silent agreement on a healthy ledger, and each kind of
tampering a superuser could do behind the service's back named by transaction or account.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.eventually import clock_passes
from tests.sql.support import Community, Ledger, Member, app_connect, owner_connect
from timebank.ledger.verify import CHECKS


def _command() -> list[str]:
    """The installed console script next to this interpreter (the venv's), else the module."""
    script = Path(sys.executable).with_name("timebank")
    return [str(script)] if script.exists() else [sys.executable, "-m", "timebank.cli"]


async def run_verify(database_url: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    env |= {"TIMEBANK_DATABASE_URL": database_url, "TIMEBANK_LOG_FORMAT": "json"}
    process = await asyncio.create_subprocess_exec(
        *_command(), "verify", *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@dataclass
class Ledgers:
    """A database with two communities of ordinary history, made through the SQL operations."""

    url: str
    owner: asyncpg.Connection
    ledger: Ledger
    community: Community
    other: Community
    volunteer: Member
    elder: Member
    credit_id: uuid.UUID
    gift_id: uuid.UUID


async def _history(ledger: Ledger, community: Community) -> tuple[Member, Member, uuid.UUID, uuid.UUID, dt.datetime]:
    """Every kind of movement: credit, gift, donation, grant, redemption, reversal, holds of each end.

    Also a hold that expires a second later: placed in the future (as it must be, with a margin for
    a busy machine); the caller waits for its moment to pass. Returns that moment last.
    """
    volunteer = await ledger.member(community, "volunteer", "resident")
    elder = await ledger.member(community, "resident")
    credit = await ledger.credit(volunteer, 240)
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    await ledger.hold(volunteer, 15, expires_at=expires_at)
    gift = await ledger.gift(volunteer, elder, 60)
    await ledger.donate(volunteer, 30)
    await ledger.grant(elder, 15)
    await ledger.redeem(elder, 15)
    mistaken = await ledger.credit(volunteer, 45)
    await ledger.reverse(mistaken.body["id"])
    captured = await ledger.hold(elder, 30)
    await ledger.capture(captured.body["id"], 15, provider=volunteer)
    released = await ledger.hold(elder, 15)
    await ledger.release(released.body["id"])
    await ledger.hold(volunteer, 15)
    return volunteer, elder, uuid.UUID(credit.body["id"]), uuid.UUID(gift.body["id"]), expires_at


@pytest.fixture
async def ledgers(fresh_db: str) -> AsyncIterator[Ledgers]:
    app = await app_connect(fresh_db)
    owner = await owner_connect(fresh_db)
    try:
        ledger = await Ledger.with_new_admin(app, fresh_db)
        community = await ledger.community(slug="tampered")
        other = await ledger.community(slug="untouched")
        volunteer, elder, credit_id, gift_id, _ = await _history(ledger, community)
        *_, expires_at = await _history(ledger, other)
        await clock_passes(app, expires_at)  # the later of the two expiring holds has expired
        yield Ledgers(fresh_db, owner, ledger, community, other, volunteer, elder, credit_id, gift_id)
    finally:
        await app.close()
        await owner.close()


def violations(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("VIOLATION ")]


async def test_verify_passes_on_a_healthy_ledger(ledgers: Ledgers) -> None:
    code, out, err = await run_verify(ledgers.url)
    assert code == 0, out + err
    assert "verified: ledger consistent" in out
    assert violations(out) == []
    for check in CHECKS:
        assert any(line.split()[:2] == [check.name, "ok"] for line in out.splitlines()), (check.name, out)

    for code, out, err in await asyncio.gather(
        *(run_verify(ledgers.url, "--community", slug) for slug in ("tampered", "untouched"))
    ):
        assert code == 0, out + err


async def test_each_verify_run_is_recorded_for_the_audit_page(ledgers: Ledgers) -> None:
    """/audit shows auditors the last run: its outcome is kept, append-only, whether it passed or not."""
    code, out, err = await run_verify(ledgers.url)
    assert code == 0, out + err
    runs = await ledgers.owner.fetch("select * from verify_runs order by seq")
    assert [(r["community_id"], r["checks"], r["violations"], r["with_checkpoints"]) for r in runs] == [
        (None, len(CHECKS), 0, False)
    ]
    await ledgers.owner.execute("set session_replication_role = replica")
    await ledgers.owner.execute(
        "update postings set minutes = minutes + 1 where transaction_id = $1 and minutes > 0", ledgers.gift_id
    )
    await ledgers.owner.execute("set session_replication_role = origin")
    code, out, err = await run_verify(ledgers.url, "--community", "tampered")
    assert code == 1, out + err
    last = await ledgers.owner.fetchrow("select * from verify_runs order by seq desc limit 1")
    assert last["community_id"] == ledgers.community.id
    assert last["violations"] == len(violations(out)) > 0
    with pytest.raises(asyncpg.PostgresError):
        await ledgers.owner.execute("update verify_runs set violations = 0")
    with pytest.raises(asyncpg.PostgresError):
        await ledgers.owner.execute("delete from verify_runs")


async def test_verify_refuses_an_unknown_community(ledgers: Ledgers) -> None:
    code, out, err = await run_verify(ledgers.url, "--community", "no-such-place")
    assert code == 2, out + err
    assert "no-such-place" in err


async def _posting_amount_changed(s: Ledgers) -> list[str]:
    posting = await s.owner.fetchrow(
        "select id, account_id from postings where transaction_id = $1 and minutes > 0", s.gift_id
    )
    assert posting is not None
    await s.owner.execute("alter table postings disable trigger postings_append_only")
    await s.owner.execute("update postings set minutes = minutes + 15 where id = $1", posting["id"])
    await s.owner.execute("alter table postings enable trigger postings_append_only")
    return [f"transaction {s.gift_id}", f"account {posting['account_id']}"]


async def _posting_deleted(s: Ledgers) -> list[str]:
    posting = await s.owner.fetchrow(
        "select id, account_id from postings where transaction_id = $1 and minutes < 0", s.credit_id
    )
    assert posting is not None
    await s.owner.execute("alter table postings disable trigger postings_append_only")
    await s.owner.execute("delete from postings where id = $1", posting["id"])
    await s.owner.execute("alter table postings enable trigger postings_append_only")
    return [f"transaction {s.credit_id}", f"account {posting['account_id']}"]


async def _balance_changed(s: Ledgers) -> list[str]:
    # Accounts are not append-only (the balance is a cache of the postings), so no trigger to switch off.
    await s.owner.execute(
        "update accounts set balance_minutes = balance_minutes + 60 where id = $1", s.elder.account_id
    )
    return [f"account {s.elder.account_id}", "community tampered"]


async def _unbalanced_transaction_inserted(s: Ledgers) -> list[str]:
    transaction_id = uuid.uuid4()
    now = dt.datetime.now(dt.UTC)
    async with s.owner.transaction():
        # Replica mode fires no triggers: neither the append-only nor the deferred zero-sum check.
        await s.owner.execute("set local session_replication_role = replica")
        await s.owner.execute(
            """
            insert into transactions (id, community_id, kind, description, created_at, created_by, request_id)
            values ($1, $2, 'credit', 'forged', $3, $4, 'forged')
            """,
            transaction_id,
            s.community.id,
            now,
            s.ledger.actor,
        )
        version = await s.owner.fetchval("select version from accounts where id = $1", s.volunteer.account_id)
        balance = await s.owner.fetchval("select balance_minutes from accounts where id = $1", s.volunteer.account_id)
        await s.owner.execute(
            """
            insert into postings
                   (transaction_id, account_id, minutes, balance_after_minutes, account_version, created_at)
            values ($1, $2, 600, $3, $4, $5)
            """,
            transaction_id,
            s.volunteer.account_id,
            balance + 600,
            version + 1,
            now,
        )
        await s.owner.execute(
            "update accounts set balance_minutes = balance_minutes + 600, version = version + 1 where id = $1",
            s.volunteer.account_id,
        )
    return [f"transaction {transaction_id}", "community tampered"]


async def _audit_event_edited(s: Ledgers) -> list[str]:
    event_id = await s.owner.fetchval(
        "select id from audit_events where subject_id = $1 and action = 'transaction.created'", s.gift_id
    )
    assert event_id is not None
    await s.owner.execute("alter table audit_events disable trigger audit_events_append_only")
    await s.owner.execute(
        """
        update audit_events
           set details = jsonb_set(details, '{postings}',
                   (select jsonb_agg(jsonb_set(p, '{minutes}', to_jsonb((p->>'minutes')::int * 2)))
                      from jsonb_array_elements(details->'postings') p))
         where id = $1
        """,
        event_id,
    )
    await s.owner.execute("alter table audit_events enable trigger audit_events_append_only")
    return [f"audit event {event_id}", str(s.gift_id)]


async def _audit_event_actor_changed(s: Ledgers) -> list[str]:
    """An edit that keeps every ledger fact intact: only the event's own digest can tell."""
    event_id = await s.owner.fetchval(
        "select id from audit_events where subject_id = $1 and action = 'transaction.created'", s.credit_id
    )
    assert event_id is not None
    await s.owner.execute("alter table audit_events disable trigger audit_events_append_only")
    await s.owner.execute("update audit_events set actor = 'someone-else' where id = $1", event_id)
    await s.owner.execute("alter table audit_events enable trigger audit_events_append_only")
    return [f"audit event {event_id}"]


async def _audit_event_deleted(s: Ledgers) -> list[str]:
    await s.owner.execute("alter table audit_events disable trigger audit_events_append_only")
    await s.owner.execute(
        "delete from audit_events where subject_id = $1 and action = 'transaction.created'", s.credit_id
    )
    await s.owner.execute("alter table audit_events enable trigger audit_events_append_only")
    return [f"transaction {s.credit_id}"]


async def _held_minutes_changed(s: Ledgers) -> list[str]:
    await s.owner.execute("update accounts set held_minutes = held_minutes + 15 where id = $1", s.elder.account_id)
    return [f"account {s.elder.account_id}"]


Tamper = Callable[[Ledgers], Awaitable[list[str]]]
TAMPERING: dict[str, tuple[Tamper, set[str]]] = {
    "posting_amount_changed": (
        _posting_amount_changed,
        {"transactions_balanced", "balance_equals_postings", "running_balances_consistent", "audit_events_consistent"},
    ),
    "posting_deleted": (_posting_deleted, {"transactions_balanced", "balance_equals_postings"}),
    "balance_changed": (_balance_changed, {"balance_equals_postings", "community_sums_to_zero"}),
    "unbalanced_transaction_inserted": (
        _unbalanced_transaction_inserted,
        {"transactions_balanced", "community_sums_to_zero", "transactions_audited"},
    ),
    "audit_event_edited": (_audit_event_edited, {"audit_events_consistent", "audit_events_unaltered"}),
    "audit_event_actor_changed": (_audit_event_actor_changed, {"audit_events_unaltered"}),
    "audit_event_deleted": (_audit_event_deleted, {"transactions_audited"}),
    "held_minutes_changed": (_held_minutes_changed, {"held_amounts_agree"}),
}


@pytest.mark.parametrize("tampering", list(TAMPERING))
async def test_verify_names_what_was_tampered_with(ledgers: Ledgers, tampering: str) -> None:
    tamper, expected_checks = TAMPERING[tampering]
    names = await tamper(ledgers)

    # The three runs are independent reads; run them side by side.
    everything, tampered, untouched = await asyncio.gather(
        run_verify(ledgers.url),
        run_verify(ledgers.url, "--community", "tampered"),
        run_verify(ledgers.url, "--community", "untouched"),
    )
    code, out, err = everything
    assert code == 1, out + err
    found = violations(out)
    assert found, out
    failed_checks = {line.removeprefix("VIOLATION ").split(":", 1)[0] for line in found}
    assert expected_checks <= failed_checks, out
    for name in names:
        assert any(name in line for line in found), f"{name!r} not named in:\n{out}"
    assert f"FAILED: {len(found)} violation(s)" in out
    for check in expected_checks:
        assert any(line.split()[:2] == [check, f"{failed_count(found, check)}"] for line in out.splitlines()), out

    # Restricted to a community, verify looks only there.
    code, out, err = tampered
    assert code == 1, out + err
    assert {line.removeprefix("VIOLATION ").split(":", 1)[0] for line in violations(out)} == failed_checks
    code, out, err = untouched
    assert code == 0, out + err
    assert violations(out) == []


def failed_count(found: list[str], check: str) -> int:
    return sum(1 for line in found if line.startswith(f"VIOLATION {check}:"))
