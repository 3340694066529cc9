"""`timebank verify --checkpoints DIR`: tampering that the ledger's own checks cannot see — a superuser
who recomputes balances, digests, audit events and even the stored tree — is caught and named
against the checkpoints saved outside the database; so are forks and forged signatures."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.log.conftest import run_timebank
from tests.sql.support import Community, Ledger, Member, app_connect, owner_connect
from timebank.ledger.verify import CHECKS
from timebank.log import merkle
from timebank.log.audit import LOG_CHECKS
from timebank.log.leaf import leaf_from_json
from timebank.log.note import Checkpoint, Signer
from timebank.log.sealer import seal_once
from timebank.log.signer import CheckpointSigner, checkpoint_file_name


@dataclass
class Sealed:
    url: str
    app: asyncpg.Connection
    owner: asyncpg.Connection
    ledger: Ledger
    community: Community
    volunteer: Member
    elder: Member
    signer: CheckpointSigner
    gift_id: uuid.UUID
    credit_ids: list[uuid.UUID]


@pytest.fixture
async def sealed(fresh_db: str, tmp_path: Path) -> AsyncIterator[Sealed]:
    """A ledger whose history was logged and checkpointed three times."""
    app = await app_connect(fresh_db)
    owner = await owner_connect(fresh_db)
    try:
        ledger = await Ledger.with_new_admin(app, fresh_db)
        community = await ledger.community()
        volunteer = await ledger.member(community, "volunteer", "resident")
        elder = await ledger.member(community, "resident")
        signer = CheckpointSigner(Signer.generate("timebank.test/log"), tmp_path / "checkpoints")
        credits = [uuid.UUID((await ledger.credit(volunteer, 60)).body["id"]) for _ in range(3)]
        await seal_once(app, signer)
        gift = uuid.UUID((await ledger.gift(volunteer, elder, 30)).body["id"])
        credits += [uuid.UUID((await ledger.credit(volunteer, 15)).body["id"]) for _ in range(2)]
        await seal_once(app, signer)
        await ledger.redeem(elder, 15)
        credits.append(uuid.UUID((await ledger.credit(volunteer, 45)).body["id"]))
        await seal_once(app, signer)
        yield Sealed(fresh_db, app, owner, ledger, community, volunteer, elder, signer, gift, credits)
    finally:
        await app.close()
        await owner.close()


async def verify(s: Sealed) -> tuple[int, str, str]:
    return await run_timebank(
        "verify", "--checkpoints", str(s.signer.directory), "--log-key", s.signer.signer.verifier.encode(),
        env={"TIMEBANK_DATABASE_URL": s.url},
    )  # fmt: skip


def violations(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("VIOLATION ")]


async def _sql(s: Sealed, *statements: str, args: tuple[object, ...] = ()) -> None:
    """As a superuser, with every trigger off (append-only guards, foreign keys, the zero-sum check)."""
    async with s.owner.transaction():
        await s.owner.execute("set local session_replication_role = replica")
        for statement in statements:
            await s.owner.execute(statement, *args) if "$1" in statement else await s.owner.execute(statement)


RECOMPUTE_BALANCES = (
    # Running balances and versions as if the history had always been this way.
    "update postings set account_version = -account_version",
    """update postings p set balance_after_minutes = x.running, account_version = x.n
         from (select id, sum(minutes) over w as running, row_number() over w as n from postings
               window w as (partition by account_id order by -account_version, id)) x
        where x.id = p.id""",
    """update accounts a set balance_minutes = coalesce((select sum(minutes) from postings where account_id = a.id), 0),
                            version = (select count(*) from postings where account_id = a.id)""",
    # Audit events that record the postings as they now are, with their digests recomputed.
    """update audit_events e
          set details = jsonb_set(e.details, '{postings}',
                (select jsonb_agg(jsonb_build_object('account_id', account_id, 'minutes', minutes) order by id)
                   from postings where transaction_id = e.subject_id))
        where e.action = 'transaction.created'""",
    """update audit_events set content_hash = _audit_event_digest(id, at, actor, on_behalf_of, action, subject_type,
                                                               subject_id, community_id, request_id, details)""",
)


async def rebuild_tree(s: Sealed) -> None:
    """The strongest tamperer: the stored tree recomputed from the ledger as it now is."""
    rows = await s.owner.fetch(
        "select _log_leaf_json(transaction_id)::text as leaf from log_leaves order by leaf_index"
    )
    hashes = [merkle.leaf_hash(leaf_from_json(r["leaf"])) for r in rows]
    nodes = sorted(merkle.append(0, hashes, {}.__getitem__).items())
    async with s.owner.transaction():
        await s.owner.execute("set local session_replication_role = replica")
        await s.owner.execute("delete from log_nodes")
        await s.owner.executemany("insert into log_nodes values ($1, $2, $3)", [(lv, ix, h) for (lv, ix), h in nodes])
        await s.owner.execute("update log_state set tree_size = $1", len(hashes))


async def _posting_edited(s: Sealed) -> set[str]:
    await _sql(
        s,
        "update postings set minutes = minutes * 3 where transaction_id = $1",
        *RECOMPUTE_BALANCES,
        args=(s.gift_id,),
    )
    await rebuild_tree(s)
    return {"checkpoints_match_log"}


async def _posting_edited_tree_kept(s: Sealed) -> set[str]:
    await _sql(
        s, "update postings set minutes = minutes * 3 where transaction_id = $1", *RECOMPUTE_BALANCES, args=(s.gift_id,)
    )
    return {"log_leaves_match_ledger", "checkpoints_match_log"}


async def _transaction_deleted(s: Sealed) -> set[str]:
    victim = s.credit_ids[1]
    index = await s.owner.fetchval("select leaf_index from log_leaves where transaction_id = $1", victim)
    await _sql(
        s,
        "delete from postings where transaction_id = $1",
        "delete from audit_events where subject_id = $1",
        "delete from log_leaves where transaction_id = $1",
        "delete from transactions where id = $1",
        *RECOMPUTE_BALANCES,
        args=(victim,),
    )
    await _sql(s, "update log_leaves set leaf_index = leaf_index - 1 where leaf_index > $1", args=(index,))
    await rebuild_tree(s)
    return {"checkpoints_match_log"}


async def _transactions_swapped(s: Sealed) -> set[str]:
    first, second = s.credit_ids[0], s.credit_ids[3]
    await _sql(
        s,
        "update log_leaves set leaf_index = leaf_index + 1000000 where transaction_id in ($1, $2)",
        """update log_leaves l
              set leaf_index = (select o.leaf_index - 1000000 from log_leaves o
                                 where o.transaction_id = case when l.transaction_id = $1 then $2 else $1 end)
            where l.transaction_id in ($1, $2)""",
        args=(first, second),
    )
    await rebuild_tree(s)
    return {"checkpoints_match_log"}


async def _inserted_in_the_past(s: Sealed) -> set[str]:
    forged = uuid.uuid4()
    then = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    await _sql(
        s,
        """insert into transactions (id, community_id, kind, description, service_date, created_at, created_by,
                                     request_id)
           select $1, community_id, 'credit', 'forged', '2026-11-01', now() - interval '1 day', created_by, 'forged'
             from transactions where id = $2""",
        """insert into postings
                  (transaction_id, account_id, minutes, balance_after_minutes, account_version, created_at)
           select $1, account_id, minutes * 4, 0, 1000000 + account_version, now() - interval '1 day'
             from postings where transaction_id = $2""",
        """insert into audit_events (id, at, actor, action, subject_type, subject_id, community_id, request_id, details,
                                     content_hash)
           select gen_random_uuid(), now() - interval '1 day', actor, action, subject_type, $1, community_id, 'forged',
                  details, sha256('x'::bytea)
             from audit_events where subject_id = $2 and action = 'transaction.created'""",
        *RECOMPUTE_BALANCES,
        args=(forged, s.credit_ids[0]),
    )
    assert then < dt.datetime.now(dt.UTC)
    await seal_once(s.app, s.signer)  # the sealer logs it, at the end, where it landed
    return {"transactions_not_backdated"}


async def _fork(s: Sealed) -> set[str]:
    size = 3
    forged = Checkpoint(s.signer.signer.name, size, b"\x07" * 32)
    note = s.signer.signer.sign(forged.text())  # whoever holds the key signed a second history
    (s.signer.directory / checkpoint_file_name(forged)).write_text(note)
    return {"checkpoints_agree", "checkpoints_match_log"}


async def _bad_signature(s: Sealed) -> set[str]:
    original = sorted(s.signer.directory.glob("checkpoint-*"))[0]
    text = original.read_text()
    head, _, signature = text.rpartition(" ")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    (s.signer.directory / "checkpoint-copied").write_text(head + " " + flipped)
    return {"checkpoints_signed"}


Tamper = Callable[[Sealed], Awaitable[set[str]]]
TAMPERING: dict[str, Tamper] = {
    "posting_edited_everything_recomputed": _posting_edited,
    "posting_edited_tree_kept": _posting_edited_tree_kept,
    "transaction_deleted": _transaction_deleted,
    "transactions_swapped": _transactions_swapped,
    "transaction_inserted_in_the_past": _inserted_in_the_past,
    "fork": _fork,
    "bad_signature": _bad_signature,
}


async def test_verify_checkpoints_passes_on_an_honest_log(sealed: Sealed) -> None:
    code, out, err = await verify(sealed)
    assert code == 0, out + err
    assert "verified: ledger and public log consistent" in out
    for check in LOG_CHECKS:
        assert any(line.split()[:2] == [check.name, "ok"] for line in out.splitlines()), (check.name, out)


@pytest.mark.parametrize("tampering", list(TAMPERING))
async def test_verify_checkpoints_names_the_tampering(sealed: Sealed, tampering: str) -> None:
    expected = await TAMPERING[tampering](sealed)
    code, out, err = await verify(sealed)
    assert code == 1, out + err
    found = {line.split()[1].rstrip(":") for line in violations(out)}
    assert expected <= found, (tampering, out)
    # Recomputed to match, the ledger's own checks see nothing: only the log tells.
    if tampering.startswith(("posting_edited", "transaction_", "transactions_")):
        assert not found & {check.name for check in CHECKS}, out


async def test_verify_checkpoints_needs_the_key_and_the_directory(sealed: Sealed, tmp_path: Path) -> None:
    code, _, err = await run_timebank("verify", "--checkpoints", str(tmp_path / "nowhere"), "--log-key", "x+y+z",
                                      env={"TIMEBANK_DATABASE_URL": sealed.url})  # fmt: skip
    assert code == 2
    assert "no such directory" in err
    code, _, err = await run_timebank(
        "verify", "--checkpoints", str(sealed.signer.directory), env={"TIMEBANK_DATABASE_URL": sealed.url}
    )
    assert code == 2
    assert "--log-key" in err
