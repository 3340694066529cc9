"""The sealer: every committed transaction becomes a leaf once, in an order consistent with commit
order, including one that commits after later ones were logged; the signer signs only consistent trees."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.sql.support import Community, Ledger, Member, app_connect, owner_connect
from timebank.log import merkle, tree
from timebank.log.leaf import leaf_from_json
from timebank.log.note import Signer, open_checkpoint
from timebank.log.sealer import BATCH, SealResult, seal_once
from timebank.log.signer import STATE_FILE, CheckpointSigner, SigningRefusedError


@dataclass
class Log:
    url: str
    app: asyncpg.Connection
    owner: asyncpg.Connection
    ledger: Ledger
    community: Community
    volunteer: Member
    signer: CheckpointSigner
    reader: asyncpg.Connection | None  # given: rounds stream their rows from it (the server's way)


@pytest.fixture(params=["one connection", "streaming"])
async def log(fresh_db: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Log]:
    app = await app_connect(fresh_db)
    owner = await owner_connect(fresh_db)
    reader = await app_connect(fresh_db) if request.param == "streaming" else None
    try:
        ledger = await Ledger.with_new_admin(app, fresh_db)
        community = await ledger.community()
        volunteer = await ledger.member(community, "volunteer")
        signer = CheckpointSigner(Signer.generate("timebank.test/log"), tmp_path / "checkpoints")
        yield Log(fresh_db, app, owner, ledger, community, volunteer, signer, reader)
    finally:
        await app.close()
        await owner.close()
        if reader is not None:
            await reader.close()


async def seal(log: Log, batch: int = BATCH) -> SealResult:
    return await seal_once(log.app, log.signer, batch=batch, reader=log.reader)


async def leaves(conn: asyncpg.Connection) -> list[uuid.UUID]:
    rows = await conn.fetch("select transaction_id from log_leaves order by leaf_index")
    return [r["transaction_id"] for r in rows]


async def test_every_transaction_is_logged_once_and_the_tree_is_the_rfc_tree(log: Log) -> None:
    ids = [uuid.UUID((await log.ledger.credit(log.volunteer, 15)).body["id"]) for _ in range(7)]
    first = await seal(log)
    assert first.appended == 7
    assert first.tree_size == 7
    assert first.checkpoint is not None
    assert await leaves(log.app) == ids
    ids += [uuid.UUID((await log.ledger.credit(log.volunteer, 15)).body["id"]) for _ in range(6)]
    second = await seal(log, batch=4)  # several batches in one round
    assert second.appended == 6
    assert second.tree_size == 13
    again = await seal(log)
    assert again.appended == 0
    assert again.checkpoint is None
    assert await leaves(log.app) == ids

    # The stored tree is RFC 6962's tree of the leaf bytes, and the checkpoint signs its root.
    rows = await log.app.fetch(
        "select _log_leaf_json(transaction_id)::text as leaf from log_leaves order by leaf_index"
    )
    hashes = [merkle.leaf_hash(leaf_from_json(r["leaf"])) for r in rows]
    stored = {(0, i): h for i, h in enumerate(hashes)}
    for level, index, hash_ in await log.app.fetch("select level, index, hash from log_nodes where level > 0"):
        stored[(level, index)] = bytes(hash_)
        assert merkle.node_hash(stored[(level - 1, 2 * index)], stored[(level - 1, 2 * index + 1)]) == hash_
    checkpoint = open_checkpoint(second.checkpoint or "", log.signer.signer.verifier)
    assert (checkpoint.size, checkpoint.root) == (13, merkle.root_from(13, stored))
    assert checkpoint.root == await tree.root_at(log.app, 13)
    files = sorted(p.name for p in log.signer.directory.iterdir() if not p.name.startswith("."))
    assert len(files) == 2
    assert files[0].startswith("checkpoint-000000000007-")


async def test_a_transaction_held_open_across_a_seal_is_logged_after_it_commits(log: Log) -> None:
    """The in-flight case: a transaction that took its seq (and xact id) first but commits last."""
    # Another community: a credit locks its community's issuance account, which the held one holds.
    other = await log.ledger.member(await log.ledger.community(), "volunteer")
    before = uuid.UUID((await log.ledger.credit(log.volunteer, 15)).body["id"])
    slow_conn = await app_connect(log.url)
    try:
        slow = log.ledger.acting_as(log.ledger.actor, slow_conn)
        held = slow_conn.transaction()
        await held.start()
        slow_id = uuid.UUID((await slow.credit(log.volunteer, 30)).body["id"])  # written, not committed
        after = uuid.UUID((await log.ledger.credit(other, 45)).body["id"])
        assert await log.app.fetchval("select seq from transactions where id = $1", after) > 0
        result = await seal(log)
        assert await leaves(log.app) == [before, after]  # the later one is logged; the held one is not visible
        assert result.tree_size == 2
        # The watermark stays at or below the held transaction, which could still commit.
        state = await log.app.fetchrow("select watermark_xact::text, watermark_seq from log_state")
        xact = await log.app.fetchval("select pg_current_xact_id_if_assigned()::text from (select 1) x")
        held_xact = await slow_conn.fetchval("select pg_current_xact_id_if_assigned()::text")
        assert xact is None
        assert int(state["watermark_xact"]) <= int(held_xact)
        await held.commit()
    finally:
        await slow_conn.close()
    result = await seal(log)
    assert result.appended == 1
    assert await leaves(log.app) == [before, after, slow_id]  # appended when it committed, not skipped


async def test_a_rolled_back_transaction_never_becomes_a_leaf(log: Log) -> None:
    second = await log.ledger.member(await log.ledger.community(), "volunteer")
    conn = await app_connect(log.url)
    try:
        other = log.ledger.acting_as(log.ledger.actor, conn)
        aborted = conn.transaction()
        await aborted.start()
        gone = uuid.UUID((await other.credit(log.volunteer, 15)).body["id"])
        kept = uuid.UUID((await log.ledger.credit(second, 15)).body["id"])
        await aborted.rollback()
    finally:
        await conn.close()
    await seal(log)
    assert await leaves(log.app) == [kept]
    assert gone not in await leaves(log.app)


async def test_the_log_tables_are_append_only_and_the_app_role_cannot_write_them(log: Log) -> None:
    await log.ledger.credit(log.volunteer, 15)
    await log.ledger.credit(log.volunteer, 15)
    await seal(log)
    for statement in (
        "update log_leaves set leaf_index = leaf_index + 10",
        "delete from log_leaves",
        "truncate log_leaves cascade",
        "update log_nodes set hash = hash",
        "delete from log_nodes",
        "update log_checkpoints set note = note",
        "delete from log_checkpoints",
        "delete from log_state",
        "update log_state set tree_size = 0",
    ):
        with pytest.raises(asyncpg.PostgresError, match=r"append-only|cannot shrink"):
            await log.owner.execute(statement)  # even the owner (a superuser here) is refused
    for statement in (
        "insert into log_nodes values (5, 0, '\\x00')",
        "update log_state set tree_size = tree_size",
        "insert into log_checkpoints (tree_size, root_hash, note) values (99, '\\x00', 'x')",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await log.app.execute(statement)
    # A wrong node cannot be appended even through the function.
    credit = uuid.UUID((await log.ledger.credit(log.volunteer, 15)).body["id"])
    with pytest.raises(asyncpg.PostgresError, match="not the 1 the new leaves complete"):
        await log.app.execute(
            "select log_append(2, $1, $2, $3, $4, '0', 0)", [credit], [0, 1], [2, 1], [b"a" * 32, b"b" * 32]
        )


async def test_the_signer_refuses_a_tree_inconsistent_with_its_last_checkpoint(log: Log) -> None:
    for _ in range(3):
        await log.ledger.credit(log.volunteer, 15)
    await seal(log)
    # A superuser rewrites history: leaf 1's hash and every node above it, consistently.
    await log.owner.execute("alter table log_nodes disable trigger log_nodes_append_only")
    await log.owner.execute("update log_nodes set hash = sha256(hash) where level = 0 and index = 1")
    await log.owner.execute(
        "update log_nodes set hash = sha256('\\x01'::bytea"
        " || (select hash from log_nodes where level = 0 and index = 0)"
        " || (select hash from log_nodes where level = 0 and index = 1)) where level = 1 and index = 0"
    )
    await log.owner.execute("alter table log_nodes enable trigger log_nodes_append_only")
    await log.ledger.credit(log.volunteer, 15)
    with pytest.raises(SigningRefusedError, match="not consistent with the checkpoint of 3"):
        await seal(log)
    assert await log.app.fetchval("select max(tree_size) from log_checkpoints") == 3
    # The state the signer keeps is a note it signed: a forged one is refused too.
    (log.signer.directory / STATE_FILE).write_text("forged\n\n— timebank.test/log AAAA\n")
    with pytest.raises(SigningRefusedError, match="not a checkpoint signed by this key"):
        await seal(log)
