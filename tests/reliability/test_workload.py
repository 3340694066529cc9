"""The history-checked workload: the checker catches planted violations; a fast real run finds none.

The fast run (8 clients, a fixed seed) runs against the real `timebank serve` process on a
scratch database of the session's PostgreSQL until it has exercised everything it must (every
operation kind succeeded, the refusals answered, a hold expired, 300 operations), bounded by 60 s:
a busy machine makes it slower, not thinner. The long run (32 clients, 60 s) needs
--reliability-long.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reliability.checker import Ledger, LedgerAccount, LedgerHold, LedgerResolution, LedgerTransaction, check
from reliability.history import (
    INDETERMINATE,
    JOB_KINDS,
    OK,
    READ_KINDS,
    REPLAY,
    RESOLVE,
    RUN,
    WRITE_KINDS,
    Attempt,
    Op,
    load_history,
    op_id_of,
    request_id_for,
    write_history,
)
from reliability.operations import Draw, Planner
from reliability.services_check import LedgerBatch
from reliability.workload import Goal, Options, Result, expired_hold, run
from reliability.world import Actor, Community, Member, Policy, World
from tests.reliability.conftest import long_runs_enabled

pytestmark = pytest.mark.slow  # started first (tests/conftest.py), so the workers finish together

# --- a tiny hand-made history and ledger for the checker ------------------------------------------

ISSUANCE, POOL, ALICE, BOB = "acct-issuance", "acct-pool", "acct-alice", "acct-bob"
COMMUNITY = "c"


def _attempt(op_id: str, index: int, status: int | None, body: Any = None, **extra: Any) -> Attempt:
    phase = extra.pop("phase", RUN)
    return Attempt(phase, request_id_for(op_id, index), float(index), float(index) + 0.1, status, body, **extra)


def _credit(op_id: str, minutes: int, tx_id: str | None = None, to: str = ALICE) -> Op:
    """A credit of `minutes` to `to`, acknowledged as transaction tx_id (refused when tx_id is None)."""
    if tx_id is None:
        body: Any = {"status": 422, "code": "balance_cap_exceeded", "request_id": request_id_for(op_id, 0)}
        status = 422
    else:
        body = {"id": tx_id, "kind": "credit", "postings": _postings({ISSUANCE: -minutes, to: minutes})}
        status = 201
    return Op(
        op_id=op_id,
        client="0",
        kind="credit",
        community=COMMUNITY,
        actor="coordinator",
        method="POST",
        path="/v1/credits",
        key="k-" + op_id,
        body={"member_id": "m-" + to, "minutes": minutes},
        expect={"postings": {ISSUANCE: -minutes, to: minutes}},
        attempts=[_attempt(op_id, 0, status, body)],
    )


def _postings(postings: dict[str, int]) -> list[dict[str, Any]]:
    return [{"account_id": account, "minutes": minutes} for account, minutes in postings.items()]


def _read(op_id: str, account: str, balance: int, held: int = 0, floor: int | None = 0, cap: int | None = 600) -> Op:
    body = {
        "id": account,
        "balance_minutes": balance,
        "held_minutes": held,
        "available_minutes": balance - held,
        "floor_minutes": floor,
        "cap_minutes": cap,
    }
    return Op(
        op_id=op_id,
        client="0",
        kind="read_account",
        community=COMMUNITY,
        actor="member",
        method="GET",
        path=f"/v1/accounts/{account}",
        key=None,
        body=None,
        expect={"account_id": account, "floor": floor, "cap": cap},
        attempts=[_attempt(op_id, 0, 200, body)],
    )


def _ledger(*ops: Op, extra: tuple[LedgerTransaction, ...] = ()) -> Ledger:
    """The ledger a correct service would hold after `ops`, plus `extra` transactions."""
    ledger = Ledger(now=100.0)
    for op in ops:
        body = op.final_body
        if op.final == OK and op.kind == "credit":
            postings = tuple((p["account_id"], p["minutes"]) for p in body["postings"])
            request_id = (op.final_attempt or op.first).request_id
            ledger.transactions[body["id"]] = LedgerTransaction(body["id"], COMMUNITY, "credit", request_id, postings)
    for tx in extra:
        ledger.transactions[tx.id] = tx
    balances = dict.fromkeys((ISSUANCE, POOL, ALICE, BOB), 0)
    for tx in ledger.transactions.values():
        for account, minutes in tx.postings:
            balances[account] += minutes
    kinds = {ISSUANCE: "issuance", POOL: "pool", ALICE: "member", BOB: "member"}
    for account, balance in balances.items():
        ledger.accounts[account] = LedgerAccount(account, COMMUNITY, kinds[account], balance, 0)
    return ledger


def _kinds(ops: list[Op], ledger: Ledger) -> list[str]:
    return [v.kind for v in check(ops, ledger)]


def test_a_clean_history_has_no_violations() -> None:
    ops = [_credit("0.1", 60, "t1"), _credit("0.2", 900), _credit("0.3", 30, "t3", to=BOB), _read("0.4", ALICE, 60)]
    assert check(ops, _ledger(*ops)) == []


def test_a_lost_acknowledged_transaction_is_caught() -> None:
    ops = [_credit("0.1", 60, "t1"), _credit("0.2", 30, "t2")]
    ledger = _ledger(ops[0])
    violations = check(ops, ledger)
    assert "lost" in [v.kind for v in violations]
    assert any(v.op_id == "0.2" and "t2" in v.message for v in violations if v.kind == "lost")


def test_a_duplicated_transaction_is_caught() -> None:
    op = _credit("0.1", 60, "t1")
    second = LedgerTransaction(
        "t1-again", COMMUNITY, "credit", request_id_for("0.1", 1), ((ISSUANCE, -60), (ALICE, 60))
    )
    violations = check([op], _ledger(op, extra=(second,)))
    duplicates = [v for v in violations if v.kind == "duplicate"]
    assert len(duplicates) == 1
    assert duplicates[0].op_id == "0.1"
    assert "t1-again" in duplicates[0].message


def _batch(op_id: str, minutes: int, tx_ids: list[str]) -> Op:
    """A credit batch crediting ALICE and BOB `minutes` each, acknowledged as tx_ids."""
    credits = [
        {"id": tx_id, "kind": "credit", "postings": _postings({ISSUANCE: -minutes, to: minutes})}
        for tx_id, to in zip(tx_ids, (ALICE, BOB), strict=True)
    ]
    return Op(
        op_id=op_id,
        client="0",
        kind="credit_batch",
        community=COMMUNITY,
        actor="coordinator",
        method="POST",
        path="/v1/credit-batches",
        key="k-" + op_id,
        body={"credits": [{"member_id": "m-alice", "minutes": minutes}, {"member_id": "m-bob", "minutes": minutes}]},
        expect={"credits": [{ISSUANCE: -minutes, ALICE: minutes}, {ISSUANCE: -minutes, BOB: minutes}]},
        attempts=[_attempt(op_id, 0, 201, {"id": "b-" + op_id, "transactions": credits})],
    )


def _batch_ledger(op: Op, keep: int = 2) -> Ledger:
    """The ledger after the batch, holding only its first `keep` credits."""
    request_id = op.first.request_id
    credits = [
        LedgerTransaction(
            b["id"], COMMUNITY, "credit", request_id, tuple((p["account_id"], p["minutes"]) for p in b["postings"])
        )
        for b in op.final_body["transactions"][:keep]
    ]
    ledger = _ledger(extra=tuple(credits))
    batch_id = op.final_body["id"]
    ledger.batches[batch_id] = LedgerBatch(batch_id, COMMUNITY, tuple(c.id for c in credits), request_id)
    return ledger


def test_a_credit_batch_is_checked_credit_by_credit() -> None:
    batch = _batch("0.1", 30, ["t1", "t2"])
    assert check([batch, _read("0.2", BOB, 30)], _batch_ledger(batch)) == []
    # One of its credits missing from the ledger: lost, and the balances no longer add up.
    violations = check([batch], _batch_ledger(batch, keep=1))
    assert [(v.kind, v.op_id) for v in violations if v.kind == "lost"] == [("lost", "0.1")]
    # The batch's record lacks the item too.
    assert [(v.kind, v.op_id) for v in violations if v.kind == "wrong_batch"] == [("wrong_batch", "0.1")]
    assert "balance_mismatch" in [v.kind for v in violations]


def test_a_failed_operation_that_left_a_trace_is_caught() -> None:
    op = _credit("0.1", 60)
    trace = LedgerTransaction("t9", COMMUNITY, "credit", request_id_for("0.1", 0), ((ISSUANCE, -60), (ALICE, 60)))
    violations = check([op], _ledger(op, extra=(trace,)))
    assert [(v.kind, v.op_id) for v in violations if v.kind == "failed_left_trace"] == [("failed_left_trace", "0.1")]
    # The trace also breaks the balances the acknowledged history explains.
    assert "balance_mismatch" in [v.kind for v in violations]


def test_a_negative_balance_read_is_caught() -> None:
    ops = [_credit("0.1", 60, "t1"), _read("0.2", ALICE, -15)]
    violations = [v for v in check(ops, _ledger(ops[0])) if v.kind == "read_violation"]
    assert {v.op_id for v in violations} == {"0.2"}
    assert any("balance_minutes -15 is below the floor 0" in v.message for v in violations)


def test_a_read_above_the_cap_is_caught_but_an_allowed_overdraft_is_not() -> None:
    over_cap = _read("0.1", ALICE, 615)
    overdraft = _read("0.2", BOB, -120, floor=-120)
    violations = [v for v in check([over_cap, overdraft], _ledger()) if v.kind == "read_violation"]
    assert [v.op_id for v in violations] == ["0.1"]
    assert "above the cap 600" in violations[0].message


def test_an_indeterminate_write_counts_once_settled_by_its_key() -> None:
    op = _credit("0.1", 60, "t1")
    body = op.first.body
    op.attempts = [
        _attempt("0.1", 0, None, error="transport:ReadError"),
        _attempt("0.1", 1, 503, {"code": "unavailable"}, phase=RESOLVE),
        _attempt("0.1", 2, 201, body, phase=RESOLVE, replayed=True),
    ]
    assert op.outcome == INDETERMINATE
    assert op.final == OK
    # The ledger row carries the first attempt's request id: the retry replayed it.
    ledger = _ledger(
        extra=(LedgerTransaction("t1", COMMUNITY, "credit", request_id_for("0.1", 0), ((ISSUANCE, -60), (ALICE, 60))),)
    )
    assert check([op], ledger) == []


def test_an_unsettled_write_and_a_500_are_violations() -> None:
    op = _credit("0.1", 60, "t1")
    op.attempts = [
        _attempt("0.1", 0, 500, {"code": "internal_error"}),
        _attempt("0.1", 1, None, error="timeout", phase=RESOLVE),
    ]
    kinds = _kinds([op], _ledger())
    assert "unresolved" in kinds
    assert "server_error" in kinds


def test_a_replay_that_answers_differently_is_caught() -> None:
    op = _credit("0.1", 60, "t1")
    op.attempts.append(_attempt("0.1", 1, 400, {"code": "invalid_request"}, phase=REPLAY))
    same = _credit("0.2", 30, "t2")
    same.attempts.append(_attempt("0.2", 1, 201, same.first.body, phase=REPLAY, replayed=True))
    violations = [v for v in check([op, same], _ledger(op, same)) if v.kind == "replay_mismatch"]
    assert [v.op_id for v in violations] == ["0.1"]


def test_postings_unlike_the_request_are_caught() -> None:
    op = _credit("0.1", 60, "t1")
    op.first.body["postings"] = _postings({ISSUANCE: -60, BOB: 60})
    assert "wrong_postings" in _kinds([op], _ledger(op))


def test_a_refusal_with_a_code_the_operation_cannot_get_is_caught() -> None:
    op = _credit("0.1", 60)
    op.first.body["code"] = "insufficient_balance"
    assert _kinds([op], _ledger()) == ["unexpected_error"]


def test_holds_resolved_twice_or_expired_early_are_caught() -> None:
    def hold_op(op_id: str, kind: str, body: dict[str, Any], expect: dict[str, Any]) -> Op:
        return Op(op_id, "0", kind, COMMUNITY, "coordinator", "POST", "/", "k" + op_id, {}, expect,
                  attempts=[_attempt(op_id, 0, 201 if kind != "release" else 200, body)])  # fmt: skip

    placed = hold_op(
        "0.1",
        "hold",
        {"id": "h1", "minutes": 30, "account_id": ALICE, "member_id": "m", "status": "pending"},
        {"minutes": 30, "account_id": ALICE, "member_id": "m"},
    )
    released = hold_op("0.2", "release", {"id": "h1", "status": "released"}, {"hold_id": "h1"})
    again = hold_op("0.3", "release", {"id": "h1", "status": "released"}, {"hold_id": "h1"})
    ledger = _ledger()
    ledger.holds["h1"] = LedgerHold("h1", COMMUNITY, ALICE, "m", 30, 500.0, request_id_for("0.1", 0))
    ledger.resolutions["h1"] = LedgerResolution("h1", "released", None, request_id_for("0.2", 0))
    assert check([placed, released], ledger) == []
    assert "resolved_twice" in _kinds([placed, released, again], ledger)
    ledger.resolutions["h1"] = LedgerResolution("h1", "expired", None, "job-1")
    kinds = _kinds([placed], ledger)
    assert "early_expiry" in kinds


def test_a_goal_lists_what_a_run_still_lacks() -> None:
    def op(op_id: str, kind: str, status: int | None, body: Any, request: Any = None, **expect: Any) -> Op:
        return Op(op_id, "0", kind, COMMUNITY, "coordinator", "POST", "/", "k" + op_id, request or {}, expect,
                  attempts=[_attempt(op_id, 0, status, body)])  # fmt: skip

    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    short = {"member_id": "m", "minutes": 30, "expires_at": "2026-12-01T11:59:59.500Z"}
    placed = op("0.1", "hold", 201, {"id": "h1", "minutes": 30}, short)
    later = op("0.2", "hold", 201, {"id": "h2"}, short | {"expires_at": "2026-12-01T12:00:01.000Z"})
    refused = op("0.3", "credit", 422, {"status": 422, "code": "insufficient_balance"})
    goal = Goal(kinds=frozenset({"hold", "credit"}), refusals=frozenset({"insufficient_balance", "hold_not_pending"}),
                operations=4, writes_settled=3)  # fmt: skip
    assert goal.missing([placed, later, refused], now) == [
        "a successful credit",
        "a refusal hold_not_pending",
        "4 operations (ran 3)",
    ]
    assert goal.missing([later, refused], now)[-2:] == ["3 settled writes (had 2)", "an expired hold"]
    assert expired_hold([placed], now)
    assert not expired_hold([later], now), "its moment has not come"
    # Released (or a release without an answer: it may have been): not an expiry.
    assert not expired_hold([placed, op("0.4", "release", 200, {"id": "h1"}, hold_id="h1")], now)
    assert not expired_hold([placed, op("0.5", "release", None, None, hold_id="h1")], now)
    # A refused release leaves the hold to expire.
    refused_release = op("0.6", "release", 409, {"status": 409, "code": "hold_not_pending"}, hold_id="h1")
    assert expired_hold([placed, refused_release], now)
    credited = op("0.7", "credit", 201, {"id": "t1"})
    met = [placed, later, refused, credited, refused_release]
    assert Goal(kinds=frozenset({"hold", "credit"}), refusals=frozenset({"hold_not_pending"})).missing(met, now) == []


def test_verify_findings_and_unbalanced_communities_are_reported() -> None:
    op = _credit("0.1", 60, "t1")
    ledger = _ledger(op)
    ledger.verify_violations.append(("community_sums_to_zero", "community c: balances sum to 5"))
    ledger.accounts[POOL] = LedgerAccount(POOL, COMMUNITY, "pool", 5, 0)
    kinds = _kinds([op], ledger)
    assert "verify" in kinds
    assert "community_not_zero" in kinds


def test_the_history_file_round_trips(tmp_path: Path) -> None:
    ops = [_credit("0.1", 60, "t1"), _credit("0.2", 900), _read("0.3", ALICE, -15)]
    path = tmp_path / "history.jsonl"
    write_history(path, ops)
    loaded = load_history(path)
    assert [(o.op_id, o.kind, o.body, o.expect, len(o.attempts)) for o in loaded] == [
        (o.op_id, o.kind, o.body, o.expect, len(o.attempts)) for o in ops
    ]
    assert [str(v) for v in check(loaded, _ledger(ops[0]))] == [str(v) for v in check(ops, _ledger(ops[0]))]
    assert op_id_of(request_id_for("12.345", 3)) == "12.345"
    assert op_id_of("startup-abc") is None


# --- the seed reproduces the operations ------------------------------------------------------------


def _world() -> World:
    def member(i: int, roles: tuple[str, ...]) -> Member:
        return Member(id=f"m{i}", account_id=f"a{i}", token=f"t{i}", roles=roles, label=f"m{i}")

    members = [member(i, roles) for i, roles in enumerate((("volunteer",), ("volunteer", "resident"), ("resident",)))]
    policy = Policy(unit_minutes=15, max_transaction_minutes=240, max_balance_minutes=1200, overdraft_minutes=0)
    accounts = {"issuance": "ai", "pool": "ap", "services": "as"}
    community = Community("c", "cid", policy, accounts, member(9, ("coordinator",)), members)
    return World(Actor(label="admin", token="admin"), [community])


def _sequence(seed: int, count: int) -> list[tuple[str, str, Any]]:
    world = _world()
    planner = Planner(world, world.communities[0], "0")
    rng = random.Random(f"{seed}:0")
    ops = [planner.plan(Draw(rng), n) for n in range(1, count + 1)]
    return [(op.kind, op.actor, op.body) for op in ops if "expires_at" not in (op.body or {})]


def test_the_seed_reproduces_the_operations() -> None:
    first = _sequence(7, 200)
    assert first == _sequence(7, 200)
    assert first != _sequence(8, 200)
    assert len({kind for kind, _, _ in first}) >= 8


# --- real runs -----------------------------------------------------------------------------------

# Every operation kind, a hold's expiry, and the service request jobs' work (auto-confirm, expiry).
ALL_KINDS = (WRITE_KINDS | READ_KINDS | JOB_KINDS | {"expiry"}) - {"final_account"}


def _explain(result: Result) -> str:
    return result.figures.render()


REFUSALS = frozenset({"insufficient_balance", "amount_not_multiple_of_unit", "hold_not_pending"})
FAST_GOAL = Goal(
    kinds=ALL_KINDS - JOB_KINDS - {"expiry"},
    refusals=REFUSALS,
    operations=300,
    writes_settled=150,
    expiry=True,
    jobs=JOB_KINDS,
)


@pytest.fixture(scope="module")
async def fast_run(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Result:
    history = tmp_path_factory.mktemp("workload") / "history.jsonl"
    # The goal ends the run (in 10-40 s); 180 s is only the bound, for a machine under heavy load.
    options = Options(clients=8, seconds=180.0, seed=20261127, history=history, replays=150, goal=FAST_GOAL)
    result = await run(options, server_url, reproduce="test_workload fast run")
    print(result.figures.render())
    return result


async def test_fast_run_finds_no_violation(fast_run: Result) -> None:
    assert fast_run.violations == [], _explain(fast_run)


async def test_fast_run_exercises_every_operation(fast_run: Result) -> None:
    assert fast_run.goal_missing == [], f"not met in 60 s: {fast_run.goal_missing}\n{_explain(fast_run)}"
    # The same, from the history and the final ledger rather than from the goal's bookkeeping.
    seen = fast_run.figures.kinds_seen()
    assert seen >= ALL_KINDS, f"never succeeded: {sorted(ALL_KINDS - seen)}\n{_explain(fast_run)}"
    refused = {op.first.code for op in fast_run.ops if op.outcome == "failed"}
    assert refused >= REFUSALS
    assert len(fast_run.ops) > 200
    assert sum(1 for op in fast_run.ops for a in op.attempts if a.phase == REPLAY) >= 100


async def test_fast_run_history_checks_the_same_from_its_file(fast_run: Result) -> None:
    loaded = load_history(fast_run.figures.history_path)
    assert len(loaded) == len(fast_run.ops)
    assert [str(v) for v in check(loaded, fast_run.ledger)] == [str(v) for v in fast_run.violations]


@pytest.fixture(scope="module")
async def long_run(request: pytest.FixtureRequest, server_url: str) -> Result:
    if not long_runs_enabled(request.config):
        pytest.skip("a long reliability run: give --reliability-long (or RELIABILITY_LONG=1)")
    result = await run(Options(clients=32, seconds=60.0, seed=4242), server_url, reproduce="test_workload long run")
    print(result.figures.render())
    return result


@pytest.mark.long
async def test_long_run_finds_no_violation(long_run: Result) -> None:
    assert long_run.violations == [], _explain(long_run)
    assert long_run.figures.kinds_seen() >= ALL_KINDS, _explain(long_run)
