"""The ledger's rules, enforced by PostgreSQL itself: grants, triggers and the SQL operations.

Two kinds of caller are tried. The service role (`timebank_app`) may read the ledger and call
the operations, nothing else. The owner, even a superuser, meets the append-only triggers and the
deferred zero-sum check, so history cannot be edited or unbalanced without switching them off.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from tests.eventually import clock_passes
from tests.sql.support import APP_ROLE, Community, Ledger, Member, app_connect

APPEND_ONLY_TABLES = ("transactions", "postings", "holds", "hold_resolutions", "audit_events")

# A column of each table to "update" to itself: the statement changes nothing, only permissions decide.
TABLE_COLUMNS = {
    "communities": "name",
    "members": "display_name",
    "principals": "kind",
    "tokens": "created_by",
    "token_revocations": "revoked_by",
    "accounts": "balance_minutes",
    "holds": "minutes",
    "transactions": "description",
    "postings": "minutes",
    "hold_resolutions": "status",
    "audit_events": "action",
    "idempotency_keys": "status_code",
    "schema_migrations": "checksum",
    "service_types": "name",
    "service_requests": "status",
}
READABLE_TABLES = (
    "communities",
    "members",
    "principals",
    "accounts",
    "transactions",
    "postings",
    "holds",
    "hold_resolutions",
    "audit_events",
    "service_types",
    "service_requests",
)
SECRET_TABLES = ("tokens", "idempotency_keys")
# Read helpers the service role may call (they run with the caller's rights).
READ_HELPERS = {
    "_held_minutes",
    "_transaction_json",
    "_hold_json",
    "_audit_event_digest",
    "_credit_batch_json",
    "_service_request_json",
    "_log_leaf_json",
    # The public log's reads, plain SQL functions so that PostgreSQL inlines them (80_public_log.sql):
    # what the sealer should log next, and everything an inclusion proof needs. They read only what
    # the service role may read itself.
    "log_pending",
    "log_inclusion",
}


async def attempt(conn: asyncpg.Connection, sql: str, *args: Any) -> BaseException | None:
    """Run `sql` in a transaction that is always rolled back; return the error it raised, if any."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(sql, *args)
    except asyncpg.PostgresError as exc:
        return exc
    finally:
        await transaction.rollback()
    return None


def assert_denied(error: BaseException | None) -> None:
    assert isinstance(error, asyncpg.InsufficientPrivilegeError), f"expected a permission error, got {error!r}"


@dataclass
class World:
    """A community with a few members and some history, made through the SQL operations."""

    ledger: Ledger
    community: Community
    other: Community
    volunteer: Member  # volunteer + resident, credited 120
    friend: Member  # volunteer + resident, empty
    resident: Member  # resident only
    stranger: Member  # a volunteer of the other community
    credit_id: uuid.UUID
    hold_id: uuid.UUID  # a pending hold of 15 on the volunteer
    released_hold_id: uuid.UUID


@pytest.fixture(scope="module")
async def app_conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await app_connect(database)
    yield conn
    await conn.close()


async def make_world(app_conn: asyncpg.Connection, owner_url: str) -> World:
    ledger = await Ledger.with_new_admin(app_conn, owner_url)
    community = await ledger.community(max_balance_minutes=600)
    other = await ledger.community()
    volunteer = await ledger.member(community, "volunteer", "resident")
    friend = await ledger.member(community, "volunteer", "resident")
    resident = await ledger.member(community, "resident")
    stranger = await ledger.member(other, "volunteer", "resident")
    credit = await ledger.credit(volunteer, 120)
    hold = await ledger.hold(volunteer, 15)
    released = await ledger.hold(volunteer, 15)
    await ledger.release(released.body["id"])
    # A service request the community pays for (it holds nothing).
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    await ledger.call("create_service_request", resident.id, "meals", 60, soon, "community", "")
    return World(
        ledger,
        community,
        other,
        volunteer,
        friend,
        resident,
        stranger,
        uuid.UUID(credit.body["id"]),
        uuid.UUID(hold.body["id"]),
        uuid.UUID(released.body["id"]),
    )


@pytest.fixture(scope="module")
async def shared(app_conn: asyncpg.Connection, database: str) -> World:
    """One world for the tests that change nothing (their attempts fail, or are rolled back)."""
    return await make_world(app_conn, database)


@pytest.fixture
async def world(app_conn: asyncpg.Connection, database: str) -> World:
    """A world of the test's own, for tests that move hours."""
    return await make_world(app_conn, database)


# --- The service role: read the ledger, call the operations, nothing more -------------------------


async def test_service_role_is_unprivileged(app_conn: asyncpg.Connection) -> None:
    role = await app_conn.fetchrow(
        "select rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication from pg_roles where rolname = $1",
        APP_ROLE,
    )
    assert role is not None
    assert not any(role.values()), dict(role)
    assert await app_conn.fetchval("select current_user") == APP_ROLE
    assert not await app_conn.fetchval("select pg_has_role($1, 'timebank_owner', 'member')", APP_ROLE)
    owned = await app_conn.fetchval(
        """
        select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'timebank' and c.relowner = $1::regrole
        """,
        APP_ROLE,
    )
    assert owned == 0
    owned_functions = await app_conn.fetchval(
        """
        select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname = 'timebank' and p.proowner = $1::regrole
        """,
        APP_ROLE,
    )
    assert owned_functions == 0
    assert_denied(await attempt(app_conn, "set role timebank_owner"))
    assert_denied(await attempt(app_conn, "create table timebank.sneaky (id int)"))
    assert_denied(await attempt(app_conn, "create function timebank.sneaky() returns int language sql as 'select 1'"))


@pytest.mark.parametrize("table", READABLE_TABLES)
async def test_service_role_reads_the_ledger(app_conn: asyncpg.Connection, shared: World, table: str) -> None:
    # The positive control for the denials below: the same connection can read these tables.
    count = await app_conn.fetchval(f"select count(*) from {table}")
    assert count > 0


@pytest.mark.parametrize("table", SECRET_TABLES)
async def test_service_role_cannot_read_secrets(app_conn: asyncpg.Connection, shared: World, table: str) -> None:
    assert_denied(await attempt(app_conn, f"select * from {table}"))
    assert_denied(await attempt(app_conn, f"select count(*) from {table}"))


@pytest.mark.parametrize("operation", ["insert", "update", "delete"])
@pytest.mark.parametrize("table", sorted(TABLE_COLUMNS))
async def test_service_role_cannot_write_tables(
    app_conn: asyncpg.Connection, shared: World, table: str, operation: str
) -> None:
    column = TABLE_COLUMNS[table]
    sql = {
        "insert": f"insert into {table} default values",
        "update": f"update {table} set {column} = {column}",
        "delete": f"delete from {table}",
    }[operation]
    assert_denied(await attempt(app_conn, sql))


@pytest.mark.parametrize("table", sorted(TABLE_COLUMNS))
async def test_service_role_cannot_truncate(app_conn: asyncpg.Connection, shared: World, table: str) -> None:
    assert_denied(await attempt(app_conn, f"truncate {table}"))
    assert_denied(await attempt(app_conn, f"truncate {table} cascade"))


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
async def test_service_role_cannot_disable_triggers(app_conn: asyncpg.Connection, table: str) -> None:
    assert_denied(await attempt(app_conn, f"alter table {table} disable trigger {table}_append_only"))
    assert_denied(await attempt(app_conn, f"alter table {table} disable trigger all"))
    assert_denied(await attempt(app_conn, f"drop trigger {table}_append_only on {table}"))
    assert_denied(await attempt(app_conn, "set session_replication_role = replica"))


@pytest.mark.parametrize(
    "call",
    [
        "select _post(null::uuid, 'credit', 'x', null::date, null::uuid, null::uuid, null::uuid, null::uuid, 'r',"
        " array[]::uuid[], array[]::bigint[])",
        "select _fail('insufficient_balance', 'x')",
        "select _audit('x', null::uuid, 'transaction.created', null, null, null::uuid, 'r', '{}'::jsonb)",
        "select _idempotency_claim(null::uuid, 'k', '\\x00'::bytea)",
        "select _idempotency_store(null::uuid, 'k', 201, '{}'::jsonb)",
        "select _member_account(null::uuid)",
        "select _system_account(null::uuid, 'pool')",
        "select _principal(null::uuid)",
    ],
)
async def test_service_role_cannot_call_internal_helpers(app_conn: asyncpg.Connection, call: str) -> None:
    assert_denied(await attempt(app_conn, call))


async def test_executable_functions_are_the_operations(app_conn: asyncpg.Connection) -> None:
    """What the service role may execute: SECURITY DEFINER operations with a pinned search_path, or read helpers."""
    rows = await app_conn.fetch(
        """
        select p.proname, p.prosecdef, coalesce(p.proconfig, '{}') as config
          from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname = 'timebank' and has_function_privilege($1, p.oid, 'execute')
        """,
        APP_ROLE,
    )
    names = {r["proname"] for r in rows}
    assert {"post_credit", "reverse_transaction", "place_hold", "capture_hold", "expire_holds"} <= names
    # Minting admins and auditors is the owner's (CLI, start-up), never the running service's.
    assert not {"create_principal_token", "ensure_admin_token"} & names
    # So is revoking any token as the system (`timebank token revoke`).
    assert "revoke_token_as_system" not in names
    for row in rows:
        if row["proname"].startswith("_") or row["proname"] in READ_HELPERS:
            assert row["proname"] in READ_HELPERS, f"internal helper {row['proname']} is executable"
            assert not row["prosecdef"], f"read helper {row['proname']} must run with the caller's rights"
        else:
            assert row["prosecdef"], f"{row['proname']} is executable but not SECURITY DEFINER"
            assert any(c.startswith("search_path=") for c in row["config"]), (
                f"SECURITY DEFINER {row['proname']} does not pin its search_path"
            )
    unreachable = await app_conn.fetchval(
        """
        select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname = 'timebank' and p.proname in ('_post', 'reject_ledger_change', 'check_transaction_balanced')
           and not has_function_privilege($1, p.oid, 'execute')
        """,
        APP_ROLE,
    )
    assert unreachable == 3


# --- The owner, even a superuser: history is append-only and every transaction balances ----------


def assert_append_only(error: BaseException | None) -> None:
    assert isinstance(error, asyncpg.PostgresError), f"expected the append-only trigger to refuse, got {error!r}"
    assert error.sqlstate == "TB900", (error.sqlstate, error)
    assert getattr(error, "detail", None) == "append_only"


def row_filter(table: str, world: World) -> tuple[str, list[Any]]:
    """A where clause picking this world's rows of `table` (so the row triggers have rows to fire on)."""
    community = world.community.id
    return {
        "transactions": ("community_id = $1", [community]),
        "postings": ("transaction_id = $1", [world.credit_id]),
        "holds": ("community_id = $1", [community]),
        "hold_resolutions": ("hold_id = $1", [world.released_hold_id]),
        "audit_events": ("community_id = $1", [community]),
    }[table]


@pytest.mark.parametrize("role", ["superuser", "timebank_owner"])
@pytest.mark.parametrize("operation", ["update", "delete"])
@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
async def test_owner_cannot_edit_history(
    owner: asyncpg.Connection, shared: World, table: str, operation: str, role: str
) -> None:
    where, args = row_filter(table, shared)
    assert await owner.fetchval(f"select count(*) from {table} where {where}", *args) > 0
    column = TABLE_COLUMNS[table]
    statement = f"update {table} set {column} = {column}" if operation == "update" else f"delete from {table}"
    transaction = owner.transaction()
    await transaction.start()
    try:
        if role != "superuser":
            await owner.execute(f"set local role {role}")
        with pytest.raises(asyncpg.PostgresError) as caught:
            await owner.execute(f"{statement} where {where}", *args)
        assert_append_only(caught.value)
    finally:
        await transaction.rollback()


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
async def test_owner_cannot_truncate_history(owner: asyncpg.Connection, shared: World, table: str) -> None:
    # TRUNCATE is transactional, and attempt() always rolls back: even were the trigger missing,
    # the shared database would keep its rows.
    assert await owner.fetchval(f"select count(*) from {table}") > 0
    assert_append_only(await attempt(owner, f"truncate {table} cascade"))
    assert_append_only(await attempt(owner, f"truncate {table}, postings, hold_resolutions, transactions cascade"))
    transaction = owner.transaction()
    await transaction.start()
    try:
        await owner.execute("set local role timebank_owner")
        with pytest.raises(asyncpg.PostgresError) as caught:
            await owner.execute(f"truncate {table} cascade")
        assert_append_only(caught.value)
    finally:
        await transaction.rollback()
    assert await owner.fetchval(f"select count(*) from {table}") > 0


async def insert_transaction(
    owner: asyncpg.Connection,
    world: World,
    postings: list[tuple[uuid.UUID, int]],
    community: Community | None = None,
    kind: str = "credit",
    reverses: uuid.UUID | None = None,
) -> uuid.UUID:
    """Insert a transaction and its postings directly, as only a superuser could."""
    now = dt.datetime.now(dt.UTC)
    transaction_id = uuid.uuid4()
    await owner.execute(
        """
        insert into transactions (id, community_id, kind, description, created_at, created_by, reverses, request_id)
        values ($1, $2, $3, 'typed in by hand', $4, $5, $6, 'manual')
        """,
        transaction_id,
        (community or world.community).id,
        kind,
        now,
        world.ledger.actor,
        reverses,
    )
    for account_id, minutes in postings:
        # Versions far above any the operations reach, so the (account, version) key never collides.
        await owner.execute(
            """
            insert into postings
                   (transaction_id, account_id, minutes, balance_after_minutes, account_version, created_at)
            values ($1, $2, $3, $3, 1000000 + (random() * 1000000)::bigint, $4)
            """,
            transaction_id,
            account_id,
            minutes,
            now,
        )
    return transaction_id


async def assert_rejected_at_commit(
    owner: asyncpg.Connection, world: World, detail: str, postings: list[tuple[uuid.UUID, int]], **kw: Any
) -> None:
    transaction = owner.transaction()
    await transaction.start()
    try:
        # The inserts themselves pass: the check is deferred to the end of the database transaction.
        transaction_id = await insert_transaction(owner, world, postings, **kw)
    except BaseException:
        await transaction.rollback()
        raise
    with pytest.raises(asyncpg.PostgresError) as caught:
        await transaction.commit()
    assert caught.value.sqlstate == "TB901", (caught.value.sqlstate, caught.value)
    assert getattr(caught.value, "detail", None) == detail
    assert await owner.fetchval("select count(*) from transactions where id = $1", transaction_id) == 0
    assert await owner.fetchval("select count(*) from postings where transaction_id = $1", transaction_id) == 0


async def test_balanced_direct_insert_passes_the_deferred_check(owner: asyncpg.Connection, shared: World) -> None:
    # The positive control for the rejections below: the same kind of insert, balanced, is accepted
    # by the check (run now with SET CONSTRAINTS), then rolled back so the ledger stays as it was.
    issuance, member = shared.community.issuance, shared.friend.account_id
    transaction = owner.transaction()
    await transaction.start()
    try:
        transaction_id = await insert_transaction(owner, shared, [(issuance, -30), (member, 30)])
        await owner.execute("set constraints all immediate")
        assert await owner.fetchval("select count(*) from postings where transaction_id = $1", transaction_id) == 2
    finally:
        await transaction.rollback()


async def test_unbalanced_transaction_fails_at_commit(owner: asyncpg.Connection, shared: World) -> None:
    await assert_rejected_at_commit(owner, shared, "unbalanced_transaction", [(shared.friend.account_id, 60)])


async def test_postings_not_summing_to_zero_fail_at_commit(owner: asyncpg.Connection, shared: World) -> None:
    postings = [(shared.community.issuance, -60), (shared.friend.account_id, 45)]
    await assert_rejected_at_commit(owner, shared, "unbalanced_transaction", postings)


async def test_transaction_without_postings_fails_at_commit(owner: asyncpg.Connection, shared: World) -> None:
    await assert_rejected_at_commit(owner, shared, "unbalanced_transaction", [])


async def test_postings_in_two_communities_fail_at_commit(owner: asyncpg.Connection, shared: World) -> None:
    postings = [(shared.other.issuance, -60), (shared.friend.account_id, 60)]
    await assert_rejected_at_commit(owner, shared, "cross_community_not_allowed", postings)


@pytest.mark.parametrize("minutes", [7, 20, 1455])
async def test_amount_outside_policy_fails_at_commit(owner: asyncpg.Connection, shared: World, minutes: int) -> None:
    # Unit 15 and at most 1440 minutes per transaction in this community.
    postings = [(shared.community.issuance, -minutes), (shared.friend.account_id, minutes)]
    await assert_rejected_at_commit(owner, shared, "amount_not_multiple_of_unit", postings)


async def test_reversal_that_does_not_mirror_fails_at_commit(owner: asyncpg.Connection, shared: World) -> None:
    # The credit was issuance -120, volunteer +120; its reversal must be exactly +120, -120.
    postings = [(shared.community.issuance, 60), (shared.volunteer.account_id, -60)]
    await assert_rejected_at_commit(
        owner, shared, "unbalanced_transaction", postings, kind="reversal", reverses=shared.credit_id
    )


@pytest.mark.parametrize("postings", [[60], [15, -15]], ids=["unbalanced", "balanced-pair"])
async def test_postings_added_to_an_older_transaction(
    owner: asyncpg.Connection, shared: World, postings: list[int]
) -> None:
    # A committed transaction gets more postings later: checked in full at commit (the posting's own
    # trigger, since its transaction was not written by this database transaction). An unbalanced
    # addition is refused; a balanced pair keeps the transaction balanced and passes.
    accounts = [shared.friend.account_id, shared.community.issuance]
    transaction = owner.transaction()
    await transaction.start()
    try:
        for account_id, minutes in zip(accounts, postings, strict=False):
            await owner.execute(
                """
                insert into postings
                       (transaction_id, account_id, minutes, balance_after_minutes, account_version, created_at)
                values ($1, $2, $3, $3, 1000000 + (random() * 1000000)::bigint, now())
                """,
                shared.credit_id,
                account_id,
                minutes,
            )
        if len(postings) == 1:
            with pytest.raises(asyncpg.PostgresError) as caught:
                await owner.execute("set constraints all immediate")
            assert caught.value.sqlstate == "TB901"
            assert getattr(caught.value, "detail", None) == "unbalanced_transaction"
        else:
            await owner.execute("set constraints all immediate")
    finally:
        await transaction.rollback()


# --- The SQL operations, called directly ---------------------------------------------------------


async def snapshot(world: World) -> tuple[Any, ...]:
    """Everything an operation could change, as the service role sees it."""
    conn = world.ledger.conn
    communities = [world.community.id, world.other.id]
    accounts = await conn.fetch(
        "select id, balance_minutes, held_minutes, version from accounts where community_id = any($1) order by id",
        communities,
    )
    counts = await conn.fetchrow(
        """
        select (select count(*) from transactions where community_id = any($1)) as transactions,
               (select count(*) from holds where community_id = any($1)) as holds,
               (select count(*) from hold_resolutions r join holds h on h.id = r.hold_id
                 where h.community_id = any($1)) as resolutions
        """,
        communities,
    )
    assert counts is not None
    return (*(tuple(r.values()) for r in accounts), tuple(counts.values()))


async def test_post_credit_returns_status_body_replayed(world: World) -> None:
    ledger, volunteer = world.ledger, world.volunteer
    before = await ledger.balance(volunteer.account_id)
    first = await ledger.credit(volunteer, 60, key="credit-1", digest=b"\x01" * 32)
    assert first.status_code == 201
    assert first.replayed is False
    body = first.body
    assert body["kind"] == "credit"
    assert body["community"] == world.community.slug
    assert body["service_date"] == "2026-11-01"
    assert body["created_by"] == str(ledger.actor)
    assert sorted((p["account_id"], p["minutes"]) for p in body["postings"]) == sorted(
        [(str(world.community.issuance), -60), (str(volunteer.account_id), 60)]
    )
    assert await ledger.balance(volunteer.account_id) == before + 60

    again = await ledger.credit(volunteer, 60, key="credit-1", digest=b"\x01" * 32)
    assert again.status_code == 201
    assert again.replayed is True
    assert again.body == body
    assert await ledger.balance(volunteer.account_id) == before + 60

    state = await snapshot(world)
    with pytest.raises(asyncpg.PostgresError) as caught:
        await ledger.credit(volunteer, 75, key="credit-1", digest=b"\x02" * 32)
    assert (caught.value.sqlstate, getattr(caught.value, "detail", None)) == ("TB000", "idempotency_key_reused")
    assert await snapshot(world) == state


async def test_operations_answer_with_their_status(world: World) -> None:
    ledger, volunteer, friend = world.ledger, world.volunteer, world.friend
    gift = await ledger.gift(volunteer, friend, 15)
    assert (gift.status_code, gift.body["kind"]) == (201, "transfer")
    donation = await ledger.donate(volunteer, 15)
    assert (donation.status_code, donation.body["kind"]) == (201, "donation")
    grant = await ledger.grant(friend, 15)
    assert (grant.status_code, grant.body["kind"]) == (201, "pool_grant")
    redemption = await ledger.redeem(friend, 15, provider=volunteer)
    assert (redemption.status_code, redemption.body["kind"]) == (201, "redemption")
    reversal = await ledger.reverse(gift.body["id"])
    assert (reversal.status_code, reversal.body["kind"], reversal.body["reverses"]) == (
        201,
        "reversal",
        gift.body["id"],
    )
    captured = await ledger.capture(world.hold_id, 15, provider=friend)
    assert (captured.status_code, captured.body["kind"], captured.body["hold_id"]) == (
        201,
        "hold_capture",
        str(world.hold_id),
    )
    hold = await ledger.hold(volunteer, 15)
    assert (hold.status_code, hold.body["status"]) == (201, "pending")
    released = await ledger.release(hold.body["id"])
    assert (released.status_code, released.body["status"]) == (200, "released")
    # Volunteer: 120 credited; -15 gift, -15 donation, +15 redeemed to it, +15 gift reversed, -15 captured.
    assert await ledger.balance(volunteer.account_id) == 105
    # Friend: +15 gift, +15 grant, -15 redeemed, -15 gift reversed, +15 captured to it.
    assert await ledger.balance(friend.account_id) == 15
    assert await ledger.balance(world.community.pool) == 0


Case = Callable[[World], Awaitable[Callable[[], Awaitable[Any]]]]


async def _unknown_actor(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.acting_as(uuid.uuid4()).credit(w.volunteer, 15)


async def _volunteer_credits(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.acting_as(w.volunteer.principal_id).credit(w.friend, 15)


async def _member_redeems_for_another(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.acting_as(w.friend.principal_id).redeem(w.volunteer, 15)


async def _outsider_redeems(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.acting_as(w.stranger.principal_id).redeem(w.volunteer, 15)


async def _unknown_member(w: World) -> Callable[[], Awaitable[Any]]:
    ghost = Member(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    return lambda: w.ledger.credit(ghost, 15)


async def _unknown_transaction(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.reverse(uuid.uuid4())


async def _unknown_hold(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.capture(uuid.uuid4())


async def _credit_resident(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.credit(w.resident, 15)


async def _service_date_tomorrow(w: World) -> Callable[[], Awaitable[Any]]:
    tomorrow = await w.ledger.conn.fetchval("select (now() at time zone 'Asia/Shanghai')::date + 1")
    return lambda: w.ledger.call("post_credit", w.volunteer.id, 15, tomorrow, "not yet served")


async def _zero_minutes(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.credit(w.volunteer, 0)


async def _negative_minutes(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.gift(w.volunteer, w.friend, -15)


async def _above_maximum(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.credit(w.volunteer, 1455)


async def _not_a_multiple(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.redeem(w.volunteer, 20)


async def _redeem_too_much(w: World) -> Callable[[], Awaitable[Any]]:
    # 120 credited, 15 held: 105 available.
    return lambda: w.ledger.redeem(w.volunteer, 120)


async def _gift_too_much(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.gift(w.friend, w.volunteer, 15)


async def _donate_too_much(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.donate(w.volunteer, 120)


async def _grant_from_empty_pool(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.grant(w.friend, 15)


async def _hold_too_much(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.hold(w.volunteer, 120)


async def _reversal_below_floor(w: World) -> Callable[[], Awaitable[Any]]:
    # The volunteer passes the credited hours on; reversing the credit would leave it negative.
    await w.ledger.gift(w.volunteer, w.friend, 105)
    return lambda: w.ledger.reverse(w.credit_id)


async def _credit_above_cap(w: World) -> Callable[[], Awaitable[Any]]:
    await w.ledger.credit(w.friend, 600)
    return lambda: w.ledger.credit(w.friend, 15)


async def _gift_above_cap(w: World) -> Callable[[], Awaitable[Any]]:
    await w.ledger.credit(w.friend, 600)
    return lambda: w.ledger.gift(w.volunteer, w.friend, 15)


async def _gift_to_self(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.gift(w.volunteer, w.volunteer, 15)


async def _redeem_with_self(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.redeem(w.volunteer, 15, provider=w.volunteer)


async def _capture_to_self(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.capture(w.hold_id, 15, provider=w.volunteer)


async def _gift_to_other_community(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.gift(w.volunteer, w.stranger, 15)


async def _redeem_with_other_community(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.redeem(w.volunteer, 15, provider=w.stranger)


async def _capture_to_other_community(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.capture(w.hold_id, 15, provider=w.stranger)


async def _reverse_twice(w: World) -> Callable[[], Awaitable[Any]]:
    gift = await w.ledger.gift(w.volunteer, w.friend, 15)
    await w.ledger.reverse(gift.body["id"])
    return lambda: w.ledger.reverse(gift.body["id"])


async def _reverse_a_reversal(w: World) -> Callable[[], Awaitable[Any]]:
    gift = await w.ledger.gift(w.volunteer, w.friend, 15)
    reversal = await w.ledger.reverse(gift.body["id"])
    return lambda: w.ledger.reverse(reversal.body["id"])


async def _capture_released(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.capture(w.released_hold_id)


async def _release_captured(w: World) -> Callable[[], Awaitable[Any]]:
    await w.ledger.capture(w.hold_id)
    return lambda: w.ledger.release(w.hold_id)


async def _capture_twice(w: World) -> Callable[[], Awaitable[Any]]:
    await w.ledger.capture(w.hold_id, 15)
    return lambda: w.ledger.capture(w.hold_id, 15)


async def _capture_expired(w: World) -> Callable[[], Awaitable[Any]]:
    # Holds must be placed in the future (with a margin for a busy machine); let this one's moment pass.
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    expired = await w.ledger.hold(w.volunteer, 15, expires_at=expires_at)
    await clock_passes(w.ledger.conn, expires_at)
    return lambda: w.ledger.capture(expired.body["id"])


async def _capture_more_than_held(w: World) -> Callable[[], Awaitable[Any]]:
    return lambda: w.ledger.capture(w.hold_id, 30)


async def _key_reused(w: World) -> Callable[[], Awaitable[Any]]:
    await w.ledger.gift(w.volunteer, w.friend, 15, key="same-key")
    return lambda: w.ledger.gift(w.volunteer, w.friend, 30, key="same-key")


CASES: list[tuple[str, Case]] = [
    ("unauthenticated", _unknown_actor),
    ("forbidden", _volunteer_credits),
    ("forbidden", _member_redeems_for_another),
    ("not_found", _outsider_redeems),
    ("not_found", _unknown_member),
    ("not_found", _unknown_transaction),
    ("not_found", _unknown_hold),
    ("not_a_volunteer", _credit_resident),
    ("service_date_in_future", _service_date_tomorrow),
    ("amount_out_of_range", _zero_minutes),
    ("amount_out_of_range", _negative_minutes),
    ("amount_out_of_range", _above_maximum),
    ("amount_not_multiple_of_unit", _not_a_multiple),
    ("insufficient_balance", _redeem_too_much),
    ("insufficient_balance", _gift_too_much),
    ("insufficient_balance", _donate_too_much),
    ("insufficient_balance", _grant_from_empty_pool),
    ("insufficient_balance", _hold_too_much),
    ("insufficient_balance", _reversal_below_floor),
    ("balance_cap_exceeded", _credit_above_cap),
    ("balance_cap_exceeded", _gift_above_cap),
    ("same_account", _gift_to_self),
    ("same_account", _redeem_with_self),
    ("same_account", _capture_to_self),
    ("cross_community_not_allowed", _gift_to_other_community),
    ("cross_community_not_allowed", _redeem_with_other_community),
    ("cross_community_not_allowed", _capture_to_other_community),
    ("already_reversed", _reverse_twice),
    ("cannot_reverse_reversal", _reverse_a_reversal),
    ("hold_not_pending", _capture_released),
    ("hold_not_pending", _release_captured),
    ("hold_not_pending", _capture_twice),
    ("hold_not_pending", _capture_expired),
    ("capture_exceeds_hold", _capture_more_than_held),
    ("idempotency_key_reused", _key_reused),
]


@pytest.mark.parametrize(("code", "case"), CASES, ids=[case.__name__.lstrip("_") for _, case in CASES])
async def test_operation_refuses_with_stable_code(world: World, code: str, case: Case) -> None:
    failing = await case(world)
    before = await snapshot(world)
    with pytest.raises(asyncpg.PostgresError) as caught:
        await failing()
    assert caught.value.sqlstate == "TB000", (caught.value.sqlstate, caught.value)
    assert getattr(caught.value, "detail", None) == code, caught.value
    # A refused operation leaves no trace in the ledger: the whole call rolled back.
    assert await snapshot(world) == before


async def test_insufficient_balance_names_the_account(world: World) -> None:
    with pytest.raises(asyncpg.PostgresError) as caught:
        await world.ledger.redeem(world.volunteer, 120)
    extra = json.loads(getattr(caught.value, "hint", None) or "{}")
    assert extra == {"account_id": str(world.volunteer.account_id), "available_minutes": 105}


async def test_refused_operation_leaves_its_key_free(owner: asyncpg.Connection, world: World) -> None:
    with pytest.raises(asyncpg.PostgresError):
        await world.ledger.redeem(world.volunteer, 120, key="retry-me")
    stored = await owner.fetchval(
        "select count(*) from idempotency_keys where principal_id = $1 and key = 'retry-me'", world.ledger.actor
    )
    assert stored == 0
    # With the balance grown, the same key (same request) now succeeds: the SQL layer remembered nothing.
    await world.ledger.credit(world.volunteer, 15)
    result = await world.ledger.redeem(world.volunteer, 120, key="retry-me")
    assert (result.status_code, result.replayed) == (201, False)


async def test_overdraft_lets_members_go_down_to_the_floor(world: World) -> None:
    ledger = world.ledger
    community = await ledger.community(overdraft_minutes=60)
    member = await ledger.member(community)
    await ledger.redeem(member, 45)
    await ledger.redeem(member, 15)
    assert await ledger.balance(member.account_id) == -60
    with pytest.raises(asyncpg.PostgresError) as caught:
        await ledger.redeem(member, 15)
    assert getattr(caught.value, "detail", None) == "insufficient_balance"
    # The pool has no overdraft, whatever the members' policy.
    with pytest.raises(asyncpg.PostgresError) as caught:
        await ledger.grant(member, 15)
    assert getattr(caught.value, "detail", None) == "insufficient_balance"


async def test_operations_store_running_balances_and_versions(world: World) -> None:
    ledger, volunteer = world.ledger, world.volunteer
    await ledger.gift(volunteer, world.friend, 30)
    await ledger.credit(volunteer, 45)
    rows = await ledger.conn.fetch(
        "select minutes, balance_after_minutes, account_version from postings where account_id = $1"
        " order by account_version",
        volunteer.account_id,
    )
    assert [tuple(r.values()) for r in rows] == [(120, 120, 1), (-30, 90, 2), (45, 135, 3)]
    account = await ledger.conn.fetchrow(
        "select balance_minutes, held_minutes, version from accounts where id = $1", volunteer.account_id
    )
    assert account is not None
    assert tuple(account.values()) == (135, 15, 3)


async def test_a_posting_added_after_an_early_check_is_checked_again(owner: asyncpg.Connection, shared: World) -> None:
    # The transaction's own check ran early (SET CONSTRAINTS ... IMMEDIATE); a posting added to it
    # afterwards, in the same database transaction, must still be checked at commit. (A shortcut that
    # skipped a posting's check whenever its transaction was written by the same database transaction
    # let this commit unbalanced; it was tried and removed.)
    transaction = owner.transaction()
    await transaction.start()
    try:
        transaction_id = await insert_transaction(
            owner, shared, [(shared.community.issuance, -30), (shared.friend.account_id, 30)]
        )
        await owner.execute("set constraints all immediate")
        await owner.execute("set constraints all deferred")
        await owner.execute(
            """
            insert into postings
                   (transaction_id, account_id, minutes, balance_after_minutes, account_version, created_at)
            values ($1, $2, 15, 15, 1000000 + (random() * 1000000)::bigint, now())
            """,
            transaction_id,
            shared.friend.account_id,
        )
        with pytest.raises(asyncpg.PostgresError) as caught:
            await owner.execute("set constraints all immediate")
        assert caught.value.sqlstate == "TB901"
    finally:
        await transaction.rollback()


async def insert_in_one_statement(
    owner: asyncpg.Connection, world: World, postings: list[tuple[uuid.UUID, int]], to: uuid.UUID | None = None
) -> uuid.UUID:
    """A new transaction and its postings written by one statement, as the batch operations write them.

    With `to`, the statement also writes one more posting, of the first amount, to that (older) transaction.
    """
    transaction_id = uuid.uuid4()
    await owner.execute(
        """
        with t as (
            insert into transactions (id, community_id, kind, description, created_at, created_by, request_id)
            values ($1, $2, 'credit', 'typed in by hand', now(), $3, 'manual')
        )
        insert into postings (transaction_id, account_id, minutes, balance_after_minutes, account_version, created_at)
        select coalesce(x.tx, $1), x.account_id, x.minutes, x.minutes, 1000000 + (random() * 1000000)::bigint, now()
          from unnest($4::uuid[], $5::bigint[], $6::uuid[]) as x(account_id, minutes, tx)
        """,
        transaction_id,
        world.community.id,
        world.ledger.actor,
        [account for account, _ in postings] + ([postings[0][0]] if to else []),
        [minutes for _, minutes in postings] + ([postings[0][1]] if to else []),
        [None] * len(postings) + ([to] if to else []),
    )
    return transaction_id


async def test_postings_written_with_their_transaction_by_one_statement_are_checked_by_its_check(
    owner: asyncpg.Connection, shared: World
) -> None:
    # Their own checks are skipped (same inserting transaction and command as the transaction row):
    # the transaction's check, at commit, still finds them unbalanced; balanced, they pass.
    for postings, balanced in (([(shared.community.issuance, -30), (shared.friend.account_id, 45)], False),
                               ([(shared.community.issuance, -30), (shared.friend.account_id, 30)], True)):  # fmt: skip
        transaction = owner.transaction()
        await transaction.start()
        try:
            await insert_in_one_statement(owner, shared, postings)
            if balanced:
                await owner.execute("set constraints all immediate")
            else:
                with pytest.raises(asyncpg.PostgresError) as caught:
                    await owner.execute("set constraints all immediate")
                assert caught.value.sqlstate == "TB901"
                assert getattr(caught.value, "detail", None) == "unbalanced_transaction"
        finally:
            await transaction.rollback()


async def test_a_posting_written_by_a_later_statement_than_its_transaction_is_checked_in_full(
    owner: asyncpg.Connection, shared: World
) -> None:
    # The transaction and its postings by one statement, its check run early (IMMEDIATE); then a later
    # statement writes a new balanced transaction and, with it, one more posting to the first: that
    # posting shares the database transaction but not the command, so its own check runs and fails.
    issuance, friend = shared.community.issuance, shared.friend.account_id
    transaction = owner.transaction()
    await transaction.start()
    try:
        first = await insert_in_one_statement(owner, shared, [(issuance, -30), (friend, 30)])
        await owner.execute("set constraints all immediate")
        await owner.execute("set constraints all deferred")
        await insert_in_one_statement(owner, shared, [(friend, 15), (issuance, -15)], to=first)
        with pytest.raises(asyncpg.PostgresError) as caught:
            await owner.execute("set constraints all immediate")
        assert caught.value.sqlstate == "TB901"
        assert getattr(caught.value, "detail", None) == "unbalanced_transaction"
        assert str(first) in str(caught.value)
    finally:
        await transaction.rollback()
