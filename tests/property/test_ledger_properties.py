"""Any sequence of operations, some of them concurrent, keeps the ledger's invariants.

Hypothesis draws a community policy and batches of operations (credits, gifts, donations, pool
grants, redemptions, holds with capture or release, reversals, replays of earlier requests). Each
batch goes through the HTTP API at once with asyncio.gather; the application is served in the
test's own event loop (tests.sql.support.concurrent_api), so the requests run side by side on
different pool connections. A model of the ledger then has to explain every answer:

- the successful operations, applied one by one in the order the database serialised them (the
  time each took under its accounts' locks), must each be allowed by the rules at that point and
  post exactly the expected postings;
- each refusal must be the refusal the rules give in some state the ledger passed through during
  the batch (for a batch of one, the only state there is);
- a replayed request must get the original answer and move nothing.

After each example, everything `timebank verify` checks must hold, the model's balances, holds and
versions must equal the API's, the community must sum to zero and no floor may have been crossed.
Set TIMEBANK_PROPERTY_SEED to replay a run; the seed in use is printed.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import graphlib
import itertools
import os
import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, event, given, note, seed, settings
from hypothesis import strategies as st

from tests.client import Api, Member
from tests.sql.support import ServedApi, concurrent_api
from timebank.config import Settings
from timebank.ledger.verify import verify

SEED = int(os.environ.get("TIMEBANK_PROPERTY_SEED") or random.SystemRandom().randrange(2**32))
# Shrinking a failure takes minutes (each example is dozens of requests), so by default a failing
# example is reported as found, batch by batch; TIMEBANK_PROPERTY_SHRINK=1 shrinks it.
PHASES = [Phase.explicit, Phase.generate] + ([Phase.shrink] if os.environ.get("TIMEBANK_PROPERTY_SHRINK") else [])
MEMBERS = 3
# Amounts are drawn in units of the community's policy. 0 and 9 (above the 8-unit maximum) are out
# of range; -1 stands for one unit plus 5 minutes, not a multiple of the unit.
UNITS = [1, 2, 3, 4, 6, 1, 2, 3, 1, 2, 0, 9, -1]


@dataclass(frozen=True)
class Policy:
    unit_minutes: int
    max_transaction_minutes: int
    max_balance_minutes: int
    overdraft_minutes: int

    def minutes(self, units: int) -> int:
        return self.unit_minutes + 5 if units == -1 else units * self.unit_minutes


@dataclass(frozen=True)
class Op:
    """An operation as drawn: members by index, holds, transactions and requests by position."""

    name: str
    member: int = 0
    other: int | None = None
    units: int | None = None
    ref: int = 0


members = st.integers(0, MEMBERS - 1)
units = st.sampled_from(UNITS)
refs = st.integers(0, 40)
operations = st.one_of(
    st.builds(Op, name=st.just("credit"), member=members, units=units),
    st.builds(Op, name=st.just("credit"), member=members, units=st.integers(2, 8)),
    st.builds(Op, name=st.just("gift"), member=members, other=members, units=units),
    st.builds(Op, name=st.just("gift"), member=members, other=members, units=st.integers(1, 3)),
    st.builds(Op, name=st.just("donate"), member=members, units=units),
    st.builds(Op, name=st.just("grant"), member=members, units=units),
    st.builds(Op, name=st.just("redeem"), member=members, other=st.none() | members, units=units),
    st.builds(Op, name=st.just("hold"), member=members, units=units),
    st.builds(Op, name=st.just("hold"), member=members, units=st.integers(1, 3)),
    st.builds(Op, name=st.just("capture"), ref=refs, other=st.none() | members, units=st.none() | units),
    st.builds(Op, name=st.just("capture"), ref=refs, other=st.none() | members, units=st.none()),
    st.builds(Op, name=st.just("release"), ref=refs),
    st.builds(Op, name=st.just("reverse"), ref=refs),
    st.builds(Op, name=st.just("replay"), ref=refs),
)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    """A policy scaled to its unit: at most 8 units a transaction, a cap of 12 to 40 units, maybe an overdraft."""
    unit = draw(st.sampled_from([15, 10, 60]))
    cap_units = draw(st.sampled_from([24, 12, 40]))
    overdraft_units = draw(st.sampled_from([0, 0, 2]))
    return Policy(unit, 8 * unit, cap_units * unit, overdraft_units * unit)


batches = st.lists(st.lists(operations, min_size=1, max_size=5), min_size=2, max_size=8)
# Opening credits (in units, 0 for none), sent together as the first batch so that most examples
# have hours to move from the start.
fundings = st.lists(st.integers(0, 8), min_size=MEMBERS, max_size=MEMBERS)


# --- The model ---------------------------------------------------------------------------------


@dataclass
class HoldState:
    account: str
    member: int
    minutes: int
    status: str = "pending"


@dataclass
class TransactionState:
    kind: str
    postings: list[tuple[str, int]]
    reversed: bool = False


@dataclass
class Model:
    policy: Policy
    kinds: dict[str, str]  # account id -> kind
    balances: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    holds: dict[str, HoldState] = field(default_factory=dict)
    transactions: dict[str, TransactionState] = field(default_factory=dict)

    def held(self, account: str, except_hold: str | None = None) -> int:
        return sum(
            h.minutes
            for i, h in self.holds.items()
            if h.account == account and h.status == "pending" and i != except_hold
        )

    def floor(self, account: str) -> int | None:
        kind = self.kinds[account]
        return -self.policy.overdraft_minutes if kind == "member" else 0 if kind == "pool" else None

    def amount_error(self, minutes: int) -> str | None:
        if minutes <= 0 or minutes > self.policy.max_transaction_minutes:
            return "amount_out_of_range"
        if minutes % self.policy.unit_minutes:
            return "amount_not_multiple_of_unit"
        return None

    def posting_error(self, postings: list[tuple[str, int]], except_hold: str | None = None) -> str | None:
        """The first rule the postings would break, checked in order as the database does."""
        for account, minutes in postings:
            new = self.balances[account] + minutes
            floor = self.floor(account)
            if minutes < 0 and floor is not None:
                if new - self.held(account, except_hold) < floor:
                    return "insufficient_balance"
            elif minutes > 0 and self.kinds[account] == "member" and new > self.policy.max_balance_minutes:
                return "balance_cap_exceeded"
        return None


@dataclass
class Planned:
    """An operation resolved against what exists when its batch starts, with its HTTP request."""

    op: Op
    path: str
    token: str
    body: dict[str, Any] | None
    key: str
    hold_id: str | None = None
    transaction_id: str | None = None
    original: Sent | None = None


@dataclass
class Sent:
    planned: Planned
    status: int
    body: dict[str, Any]
    replayed: bool


@dataclass
class Verdict:
    """What the model says an operation does in a given state."""

    code: str | None
    kind: str | None = None
    postings: list[tuple[str, int]] = field(default_factory=list)
    except_hold: str | None = None


@dataclass
class World:
    api: Api
    policy: Policy
    community_id: str
    accounts: dict[str, str]  # issuance, pool, services
    members: list[Member]

    def account(self, index: int) -> str:
        return self.members[index].account_id


def judge(world: World, model: Model, planned: Planned) -> Verdict:
    """The model's answer for one operation in one state, following its SQL function's order of checks."""
    op = planned.op
    minutes = model.policy.minutes(op.units) if op.units is not None else None
    return JUDGES[op.name](world, model, planned, minutes)


def _amount(minutes: int | None) -> int:
    assert minutes is not None
    return minutes


def judge_credit(world: World, model: Model, planned: Planned, minutes: int | None) -> Verdict:
    amount, member = _amount(minutes), world.account(planned.op.member)
    return posting(model, "credit", [(world.accounts["issuance"], -amount), (member, amount)])


def judge_gift(world: World, model: Model, planned: Planned, minutes: int | None) -> Verdict:
    op, amount = planned.op, _amount(minutes)
    assert op.other is not None
    if op.other == op.member:
        return Verdict("same_account")
    return posting(model, "transfer", [(world.account(op.member), -amount), (world.account(op.other), amount)])


def judge_donate(world: World, model: Model, planned: Planned, minutes: int | None) -> Verdict:
    amount, member = _amount(minutes), world.account(planned.op.member)
    return posting(model, "donation", [(member, -amount), (world.accounts["pool"], amount)])


def judge_grant(world: World, model: Model, planned: Planned, minutes: int | None) -> Verdict:
    amount, member = _amount(minutes), world.account(planned.op.member)
    return posting(model, "pool_grant", [(world.accounts["pool"], -amount), (member, amount)])


def judge_redeem(world: World, model: Model, planned: Planned, minutes: int | None) -> Verdict:
    op, amount = planned.op, _amount(minutes)
    if op.other == op.member:
        return Verdict("same_account")
    target = world.accounts["services"] if op.other is None else world.account(op.other)
    return posting(model, "redemption", [(world.account(op.member), -amount), (target, amount)])


def judge_hold(world: World, model: Model, planned: Planned, minutes: int | None) -> Verdict:
    amount = _amount(minutes)
    error = model.amount_error(amount)
    if error:
        return Verdict(error)
    account = world.account(planned.op.member)
    floor = model.floor(account)
    assert floor is not None
    if model.balances[account] - model.held(account) - amount < floor:
        return Verdict("insufficient_balance")
    return Verdict(None, "hold")


def judge_release(world: World, model: Model, planned: Planned, minutes: int | None) -> Verdict:
    assert planned.hold_id is not None
    if model.holds[planned.hold_id].status != "pending":
        return Verdict("hold_not_pending")
    return Verdict(None, "release")


def judge_capture(world: World, model: Model, planned: Planned, minutes: int | None) -> Verdict:
    assert planned.hold_id is not None
    hold = model.holds[planned.hold_id]
    provider = planned.op.other
    if provider == hold.member:
        return Verdict("same_account")
    if hold.status != "pending":
        return Verdict("hold_not_pending")
    taken = hold.minutes if minutes is None else minutes
    if taken > hold.minutes:
        return Verdict("capture_exceeds_hold")
    error = model.amount_error(taken)
    if error:
        return Verdict(error)
    target = world.accounts["services"] if provider is None else world.account(provider)
    postings = [(hold.account, -taken), (target, taken)]
    error = model.posting_error(postings, except_hold=planned.hold_id)
    return Verdict(error, "hold_capture", postings, except_hold=planned.hold_id)


def judge_reverse(world: World, model: Model, planned: Planned, minutes: int | None) -> Verdict:
    assert planned.transaction_id is not None
    original = model.transactions[planned.transaction_id]
    if original.kind == "reversal":
        return Verdict("cannot_reverse_reversal")
    if original.reversed:
        return Verdict("already_reversed")
    postings = [(account, -amount) for account, amount in original.postings]
    return Verdict(model.posting_error(postings), "reversal", postings)


JUDGES: dict[str, Callable[[World, Model, Planned, int | None], Verdict]] = {
    "credit": judge_credit,
    "gift": judge_gift,
    "donate": judge_donate,
    "grant": judge_grant,
    "redeem": judge_redeem,
    "hold": judge_hold,
    "release": judge_release,
    "capture": judge_capture,
    "reverse": judge_reverse,
}


def posting(model: Model, kind: str, postings: list[tuple[str, int]]) -> Verdict:
    error = model.amount_error(abs(postings[0][1])) or model.posting_error(postings)
    return Verdict(error, kind, postings)


def apply(world: World, model: Model, planned: Planned, verdict: Verdict, body: dict[str, Any]) -> None:
    """Change the model as a successful operation changed the ledger."""
    if verdict.kind == "hold":
        minutes = model.policy.minutes(planned.op.units or 0)
        model.holds[body["id"]] = HoldState(world.account(planned.op.member), planned.op.member, minutes)
        return
    if verdict.kind == "release":
        assert planned.hold_id is not None
        model.holds[planned.hold_id].status = "released"
        return
    for account, minutes in verdict.postings:
        model.balances[account] += minutes
        model.versions[account] += 1
    assert verdict.kind is not None
    model.transactions[body["id"]] = TransactionState(verdict.kind, verdict.postings)
    if verdict.kind == "hold_capture":
        assert planned.hold_id is not None
        model.holds[planned.hold_id].status = "captured"
    if verdict.kind == "reversal":
        assert planned.transaction_id is not None
        model.transactions[planned.transaction_id].reversed = True


# --- Driving the API ---------------------------------------------------------------------------


def plan(world: World, op: Op, holds: list[str], transactions: list[str], history: list[Sent]) -> Planned | None:
    """The HTTP request for an operation; None when it refers to something that does not exist yet."""
    admin, key = world.api.admin_token, uuid.uuid4().hex
    referred: dict[str, list[Any]] = {"replay": history, "capture": holds, "release": holds, "reverse": transactions}
    if op.name in referred and not referred[op.name]:
        return None
    if op.name == "replay":
        original = history[op.ref % len(history)]
        first = original.planned
        return Planned(op, first.path, first.token, first.body, first.key, original=original)
    if op.name in ("capture", "release"):
        hold_id = holds[op.ref % len(holds)]
        body: dict[str, Any] | None = None
        if op.name == "capture":
            body = {"minutes": world.policy.minutes(op.units)} if op.units is not None else {}
            if op.other is not None:
                body["provider_member_id"] = world.members[op.other].id
        return Planned(op, f"/v1/holds/{hold_id}/{op.name}", admin, body, key, hold_id=hold_id)
    if op.name == "reverse":
        transaction_id = transactions[op.ref % len(transactions)]
        path = f"/v1/transactions/{transaction_id}/reversal"
        return Planned(op, path, admin, {"reason": "entered by mistake"}, key, transaction_id=transaction_id)
    member = world.members[op.member]
    body = {"minutes": world.policy.minutes(op.units or 0), "description": op.name}
    other = world.members[op.other].id if op.other is not None else None
    requests: dict[str, tuple[str, str, dict[str, Any]]] = {
        "credit": ("/v1/credits", admin, {"member_id": member.id, "service_date": "2026-11-01"}),
        "gift": ("/v1/transfers", member.token, {"from_member_id": member.id, "to_member_id": other}),
        "donate": ("/v1/transfers", member.token, {"from_member_id": member.id, "to_pool": True}),
        "grant": ("/v1/pool-grants", admin, {"member_id": member.id}),
        "redeem": ("/v1/redemptions", member.token, {"member_id": member.id, "provider_member_id": other}),
        "hold": ("/v1/holds", member.token, {"member_id": member.id}),
    }
    path, token, fields = requests[op.name]
    body.update({name: value for name, value in fields.items() if value is not None})
    return Planned(op, path, token, body, key)


async def send(world: World, planned: Planned) -> Sent:
    response = await world.api.post(planned.path, planned.token, planned.body, key=planned.key)
    body = response.json()
    return Sent(planned, response.status_code, body, response.headers.get("idempotent-replayed") == "true")


@dataclass(frozen=True)
class Effect:
    """When an operation took effect, and the version it gave each account it posted to."""

    at: dt.datetime
    versions: dict[uuid.UUID, int]


async def effect_of(owner: asyncpg.Connection, sent: Sent) -> Effect:
    """When the operation took effect, under the locks of the accounts it touched."""
    name, answer_id = sent.planned.op.name, uuid.UUID(sent.body["id"])
    if name == "hold":
        moment = await owner.fetchval("select created_at from holds where id = $1", answer_id)
    elif name == "release":
        moment = await owner.fetchval("select resolved_at from hold_resolutions where hold_id = $1", answer_id)
    else:
        moment = await owner.fetchval("select created_at from transactions where id = $1", answer_id)
    assert isinstance(moment, dt.datetime), (describe(sent), sent.body)
    rows = await owner.fetch("select account_id, account_version from postings where transaction_id = $1", answer_id)
    return Effect(moment, {row["account_id"]: row["account_version"] for row in rows})


def serial_order(effects: list[tuple[Effect, Sent]]) -> list[Sent]:
    """The successes in the order the database applied them.

    By time first; the coalescing writer gives every transaction of one batch statement the same
    time, and applies them in its own order, which each account's versions record: within equal
    times, an operation comes after every other that posted to one of its accounts with a lower
    version.
    """
    ordered: list[Sent] = []
    by_time = sorted(range(len(effects)), key=lambda i: effects[i][0].at)
    for _, group in itertools.groupby(by_time, key=lambda i: effects[i][0].at):
        members = list(group)
        sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
        for i in members:
            sorter.add(i)
            for j in members:
                shared = effects[i][0].versions.keys() & effects[j][0].versions.keys()
                if any(effects[j][0].versions[a] < effects[i][0].versions[a] for a in shared):
                    sorter.add(i, j)
        ordered += [effects[i][1] for i in sorter.static_order()]
    return ordered


def test_equal_times_are_ordered_by_the_accounts_versions() -> None:
    """Seen in CI: two gifts between the same members, coalesced into one batch statement, share a
    time; ordered by listing, the later one was judged first and 'should have been refused'."""
    at = dt.datetime(2026, 12, 8, tzinfo=dt.UTC)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first, second, third, other = (cast(Sent, name) for name in ("first", "second", "third", "other"))
    effects = [
        (Effect(at, {a: 7, c: 2}), third),
        (Effect(at, {a: 6, b: 3}), second),
        (Effect(at - dt.timedelta(microseconds=1), {b: 1}), first),
        (Effect(at, {}), other),  # no postings (a hold): anywhere among its equals
    ]
    order = serial_order(effects)
    assert order[0] == first
    assert order.index(second) < order.index(third)
    assert sorted(map(str, order)) == ["first", "other", "second", "third"]


def describe(sent: Sent) -> str:
    op = sent.planned.op
    answer = sent.body.get("code") if sent.status >= 400 else sent.body.get("id")
    return f"{op} -> {sent.status} {answer}"


async def run_batch(
    world: World, owner: asyncpg.Connection, model: Model, batch: list[Planned], history: list[Sent]
) -> Model:
    """Send a batch at once; check every answer against the model; return the model afterwards."""
    answers = await asyncio.gather(*(send(world, planned) for planned in batch))
    note("batch: " + "; ".join(describe(sent) for sent in answers))
    for sent in answers:
        event(f"{sent.planned.op.name}: {sent.body.get('code', 'ok') if sent.status >= 400 else 'ok'}")
    if len(answers) > 1:
        event("concurrent batch")
    if isinstance(world.api, ServedApi):
        event(f"pool connections: {world.api.pool_size()}")
    fresh: list[Sent] = []
    for sent in answers:
        original = sent.planned.original
        if original is None:
            assert sent.status < 500, describe(sent)
            assert not sent.replayed, describe(sent)
            fresh.append(sent)
            continue
        # A replay answers exactly as the first time, and says so.
        assert (sent.status, sent.body) == (original.status, original.body), (describe(sent), describe(original))
        assert sent.replayed, describe(sent)

    # The successes, in the order the database serialised them, each allowed where it stands.
    successes = serial_order([(await effect_of(owner, sent), sent) for sent in fresh if sent.status < 400])
    states = [copy.deepcopy(model)]
    current = copy.deepcopy(model)
    for sent in successes:
        verdict = judge(world, current, sent.planned)
        assert verdict.code is None, f"{describe(sent)} succeeded, but the rules say {verdict.code}"
        expected_status = 200 if verdict.kind == "release" else 201
        assert sent.status == expected_status, describe(sent)
        if verdict.kind in ("hold", "release"):
            assert sent.body["status"] == ("pending" if verdict.kind == "hold" else "released"), sent.body
        else:
            assert sent.body["kind"] == verdict.kind, (describe(sent), sent.body)
            got = sorted((p["account_id"], p["minutes"]) for p in sent.body["postings"])
            assert got == sorted(verdict.postings), (describe(sent), got, verdict.postings)
            if verdict.kind == "reversal":
                assert sent.body["reverses"] == sent.planned.transaction_id
        apply(world, current, sent.planned, verdict, sent.body)
        states.append(copy.deepcopy(current))

    # Each refusal is the one the rules give in some state the ledger passed through.
    for sent in fresh:
        if sent.status >= 400:
            code = sent.body.get("code")
            possible = [judge(world, state, sent.planned).code for state in states]
            assert code in possible, f"{describe(sent)}: the rules would have said {possible}"
    history.extend(fresh)
    return current


async def check_ledger(world: World, owner: asyncpg.Connection, model: Model) -> None:
    """Everything `timebank verify` checks, and the model against what the API shows."""
    report = await verify(owner, uuid.UUID(world.community_id))
    assert report.ok, "timebank verify found:\n" + "\n".join(f"  {n}: {m}" for n, m in report.violations)
    total = 0
    for account_id in model.kinds:
        account = await world.api.account(account_id)
        expected = (model.balances[account_id], model.held(account_id), model.versions[account_id])
        assert (account["balance_minutes"], account["held_minutes"], account["version"]) == expected, (
            account_id,
            model.kinds[account_id],
        )
        assert account["available_minutes"] == account["balance_minutes"] - account["held_minutes"]
        floor = model.floor(account_id)
        if floor is not None:
            assert account["floor_minutes"] == floor
            assert account["available_minutes"] >= floor, account
        total += account["balance_minutes"]
    assert total == 0, f"the community's balances sum to {total}"
    rows = await owner.fetch(
        """
        select a.id::text as account_id, a.kind, min(p.balance_after_minutes) as lowest, count(*) as postings
          from postings p join accounts a on a.id = p.account_id
         where a.community_id = $1 group by a.id, a.kind
        """,
        uuid.UUID(world.community_id),
    )
    for row in rows:
        floor = model.floor(row["account_id"])
        if floor is not None:
            assert row["lowest"] >= floor, f"{row['kind']} account {row['account_id']} went down to {row['lowest']}"
    transactions = await owner.fetchval(
        "select count(*) from transactions where community_id = $1", uuid.UUID(world.community_id)
    )
    assert transactions == len(model.transactions)


@pytest.fixture(scope="module")
async def served(settings: Settings, database: str, admin_token: str) -> AsyncIterator[ServedApi]:
    """The API in the test's loop, so that a batch sent with asyncio.gather is served concurrently."""
    async with concurrent_api(settings, database, admin_token) as api:
        yield api


@seed(SEED)
@settings(
    max_examples=25,
    deadline=None,
    derandomize=False,
    database=None,
    phases=PHASES,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(policy=policies(), funding=fundings, drawn=batches)
async def test_any_operations_keep_the_ledger_consistent(
    served: ServedApi, owner: asyncpg.Connection, policy: Policy, funding: list[int], drawn: list[list[Op]]
) -> None:
    api = served
    # Shown with the captured output of a failing run.
    print(f"ledger property test seed: {SEED} (set TIMEBANK_PROPERTY_SEED={SEED} to replay); {policy}")
    note(f"seed {SEED}, policy {policy}")
    community = await api.community(
        unit_minutes=policy.unit_minutes,
        max_transaction_minutes=policy.max_transaction_minutes,
        max_balance_minutes=policy.max_balance_minutes,
        overdraft_minutes=policy.overdraft_minutes,
    )
    people = [await api.member(community, "volunteer", "resident") for _ in range(MEMBERS)]
    world = World(api, policy, community.id, community.accounts, people)
    kinds = {community.accounts[k]: k for k in ("issuance", "pool", "services")}
    kinds.update({m.account_id: "member" for m in people})
    model = Model(policy, kinds, dict.fromkeys(kinds, 0), dict.fromkeys(kinds, 0))

    history: list[Sent] = []
    opening = [Op("credit", member=index, units=amount) for index, amount in enumerate(funding) if amount]
    for ops in [opening, *drawn]:
        holds, transactions = list(model.holds), list(model.transactions)
        batch = [p for op in ops if (p := plan(world, op, holds, transactions, history))]
        if batch:
            model = await run_batch(world, owner, model, batch, history)
    await check_ledger(world, owner, model)
