"""The operations clients send: a seeded random mix of every write and read, and the client loop.

Each operation draws a fixed number of random numbers from its client's generator, whatever it
turns out to need, so operation n of client k draws the same numbers in every run with the same
seed: kinds, actors, amounts and members reproduce. Which earlier transaction or hold a capture,
release or reversal picks depends on what the client has learnt by then, which depends on timing.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar

from reliability.history import FAILED, OK, REQUEST_KINDS, REQUEST_STEP_PATHS, RUN, TRANSACTION_KINDS, Attempt, Op
from reliability.runner import Runner
from reliability.world import (
    SERVICE_DATE,
    SERVICE_TYPE,
    TARGETS_KEPT,
    Actor,
    Community,
    HoldTarget,
    Member,
    Policy,
    RequestTarget,
    TransactionTarget,
    World,
    credit_op,
    key_for,
    postings_of,
    transfer_op,
)

T = TypeVar("T")

# Relative frequency of each operation kind.
WEIGHTS: dict[str, int] = {
    "credit": 14,
    "gift": 10,
    "donation": 5,
    "pool_grant": 6,
    "redemption": 8,
    "hold": 9,
    "capture": 6,
    "release": 4,
    "reversal": 5,
    "credit_batch": 5,
    # A service request's flow: asked, claimed, checked in, reported, confirmed; now and then
    # disputed (and settled by a coordinator), cancelled or withdrawn from.
    # A step with no request in its status becomes a read, so the later steps weigh as much as the
    # first: a flow gets through even in a short run.
    "request_ask": 6,
    "request_claim": 6,
    "request_check_in": 6,
    "request_report": 6,
    "request_confirm": 6,
    "request_dispute": 2,
    "request_cancel": 2,
    "request_withdraw": 2,
    "read_account": 14,
    "read_entries": 7,
    "read_balance": 4,
    "read_transaction": 4,
}
# How a request is paid for: the member's own hours, the community's (credited from issuance), the pool's.
FUNDING = {"own": 40, "community": 35, "pool": 25}
# Statuses in which a request may still be cancelled (a disputed one by a coordinator only).
CANCELLABLE = ("open", "assigned", "in_progress")
FINAL_STATUSES = ("completed", "cancelled")
# How often an amount is deliberately not a multiple of the community's unit (a refused write).
OFF_UNIT_CHANCE = 0.04
# How often a hold expires within seconds instead of the default 14 days.
SHORT_HOLD_CHANCE = 0.35
SHORT_HOLD_SECONDS = (1.0, 2.5)
DRAWS_PER_OP = 14


class Draw:
    """The random numbers of one operation: always DRAWS_PER_OP of them, used in order."""

    def __init__(self, rng: random.Random) -> None:
        self.values = [rng.random() for _ in range(DRAWS_PER_OP)]
        self.used = 0

    def next(self) -> float:
        value = self.values[self.used]
        self.used += 1
        return value

    def chance(self, probability: float) -> bool:
        return self.next() < probability

    def pick(self, items: Sequence[T]) -> T:
        return items[min(int(self.next() * len(items)), len(items) - 1)]

    def integer(self, low: int, high: int) -> int:
        """Uniform in [low, high]."""
        return low + min(int(self.next() * (high - low + 1)), high - low)

    def weighted(self, weights: dict[str, int]) -> str:
        point = self.next() * sum(weights.values())
        for name, weight in weights.items():
            point -= weight
            if point < 0:
                return name
        return next(reversed(weights))


def amount(draw: Draw, policy: Policy, max_units: int) -> int:
    """A whole number of units; now and then one that is not (the service must refuse it)."""
    unit = policy.unit_minutes
    minutes = draw.integer(1, max(1, min(max_units, policy.max_transaction_minutes // unit))) * unit
    if draw.chance(OFF_UNIT_CHANCE) and unit > 1:
        minutes -= draw.integer(1, unit - 1)
    return minutes


class Planner:
    """Builds operation n of a client in its community."""

    def __init__(self, world: World, community: Community, client: str) -> None:
        self.world = world
        self.c = community
        self.client = client
        self.builders: dict[str, Callable[[Draw, str], Op | None]] = {
            "credit": self.credit,
            "gift": self.gift,
            "donation": self.donation,
            "pool_grant": self.pool_grant,
            "redemption": self.redemption,
            "hold": self.hold,
            "capture": self.capture,
            "release": self.release,
            "reversal": self.reversal,
            "credit_batch": self.credit_batch,
            "request_ask": self.request_ask,
            "request_claim": self.request_claim,
            "request_check_in": self.request_check_in,
            "request_report": self.request_report,
            "request_confirm": self.request_confirm,
            "request_dispute": self.request_dispute,
            "request_cancel": self.request_cancel,
            "request_withdraw": self.request_withdraw,
            "read_account": self.read_account,
            "read_entries": self.read_entries,
            "read_balance": self.read_balance,
            "read_transaction": self.read_transaction,
        }

    def plan(self, draw: Draw, n: int) -> Op:
        op_id = f"{self.client}.{n}"
        kind = draw.weighted(WEIGHTS)
        op = self.builders[kind](draw, op_id)
        # Nothing to capture, release or reverse yet: read instead.
        return op if op is not None else self.read_account(draw, op_id)

    def _staff(self, draw: Draw, admin_chance: float = 0.1) -> Actor:
        return self.world.admin if draw.chance(admin_chance) else self.c.coordinator

    def _self_or_staff(self, draw: Draw, member: Member, role: str) -> Actor:
        """The member itself when its role allows it (most of the time), else its coordinator."""
        if role in member.roles and draw.chance(0.65):
            return member
        return self.c.coordinator

    def _other(self, draw: Draw, member: Member) -> Member:
        return draw.pick([m for m in self.c.members if m.id != member.id])

    def _op(self, op_id: str, kind: str, actor: Actor, path: str, body: Any, expect: dict[str, Any]) -> Op:
        return Op(
            op_id=op_id,
            client=self.client,
            kind=kind,
            community=self.c.slug,
            actor=actor.label,
            method="POST",
            path=path,
            key=key_for(op_id),
            body=body,
            expect=expect,
            token=actor.token,
        )

    def _read(self, op_id: str, kind: str, actor: Actor, path: str, expect: dict[str, Any], **params: Any) -> Op:
        return Op(
            op_id=op_id,
            client=self.client,
            kind=kind,
            community=self.c.slug,
            actor=actor.label,
            method="GET",
            path=path,
            key=None,
            body=None,
            expect=expect,
            params=params or None,
            token=actor.token,
        )

    # --- writes that move hours ---

    def credit(self, draw: Draw, op_id: str) -> Op:
        # Now and then a resident, who cannot be credited (422 not_a_volunteer).
        member = draw.pick(self.c.residents_only) if draw.chance(0.04) else draw.pick(self.c.volunteers)
        return credit_op(op_id, self.client, self.c, self._staff(draw), member, amount(draw, self.c.policy, 6))

    def gift(self, draw: Draw, op_id: str) -> Op:
        sender = draw.pick(self.c.members)
        actor = self._self_or_staff(draw, sender, sender.roles[0])
        minutes = amount(draw, self.c.policy, 4)
        return transfer_op(op_id, self.client, self.c, actor, sender, self._other(draw, sender), minutes)

    def donation(self, draw: Draw, op_id: str) -> Op:
        sender = draw.pick(self.c.members)
        actor = self._self_or_staff(draw, sender, sender.roles[0])
        return transfer_op(op_id, self.client, self.c, actor, sender, None, amount(draw, self.c.policy, 3))

    def pool_grant(self, draw: Draw, op_id: str) -> Op:
        member = draw.pick(self.c.members)
        minutes = amount(draw, self.c.policy, 3)
        body = {"member_id": member.id, "minutes": minutes, "description": "granted"}
        expect = {"postings": {self.c.accounts["pool"]: -minutes, member.account_id: minutes}}
        return self._op(op_id, "pool_grant", self._staff(draw), "/v1/pool-grants", body, expect)

    def redemption(self, draw: Draw, op_id: str) -> Op:
        member = draw.pick(self.c.members)
        actor = self._self_or_staff(draw, member, "resident")
        minutes = amount(draw, self.c.policy, 4)
        body: dict[str, Any] = {"member_id": member.id, "minutes": minutes, "description": "served me"}
        target = self.c.accounts["services"]
        if draw.chance(0.3):
            provider = self._other(draw, member)
            body["provider_member_id"] = provider.id
            target = provider.account_id
        expect = {"postings": {member.account_id: -minutes, target: minutes}}
        return self._op(op_id, "redemption", actor, "/v1/redemptions", body, expect)

    def hold(self, draw: Draw, op_id: str) -> Op:
        member = draw.pick(self.c.members)
        actor = self._self_or_staff(draw, member, "resident")
        minutes = amount(draw, self.c.policy, 4)
        body: dict[str, Any] = {"member_id": member.id, "minutes": minutes, "description": "booked"}
        if draw.chance(SHORT_HOLD_CHANCE):
            seconds = SHORT_HOLD_SECONDS[0] + draw.next() * (SHORT_HOLD_SECONDS[1] - SHORT_HOLD_SECONDS[0])
            expires = datetime.now(UTC) + timedelta(seconds=seconds)
            body["expires_at"] = expires.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        expect = {"account_id": member.account_id, "member_id": member.id, "minutes": minutes}
        return self._op(op_id, "hold", actor, "/v1/holds", body, expect)

    def _hold_target(self, draw: Draw) -> HoldTarget | None:
        """Mostly a hold that lasts, so that most short holds live to expire."""
        holds = list(self.c.holds)
        lasting = [h for h in holds if not h.expires_soon]
        if lasting and draw.chance(0.8):
            return draw.pick(lasting)
        return draw.pick(holds) if holds else None

    def capture(self, draw: Draw, op_id: str) -> Op | None:
        hold = self._hold_target(draw)
        if hold is None:
            return None
        body: dict[str, Any] = {}
        minutes: int | None = None
        unit = self.c.policy.unit_minutes
        if draw.chance(0.5):
            minutes = draw.integer(1, max(1, hold.minutes // unit)) * unit
            body["minutes"] = minutes
        target = self.c.accounts["services"]
        if draw.chance(0.3):
            provider = draw.pick([m for m in self.c.members if m.id != hold.member_id])
            body["provider_member_id"] = provider.id
            target = provider.account_id
        expect = {"hold_id": hold.id, "target": target, "minutes": minutes}
        return self._op(op_id, "capture", self._staff(draw), f"/v1/holds/{hold.id}/capture", body, expect)

    def release(self, draw: Draw, op_id: str) -> Op | None:
        hold = self._hold_target(draw)
        if hold is None:
            return None
        path = f"/v1/holds/{hold.id}/release"
        return self._op(op_id, "release", self._staff(draw), path, {}, {"hold_id": hold.id})

    def reversal(self, draw: Draw, op_id: str) -> Op | None:
        # Now and then a reversal itself, which cannot be reversed (409 cannot_reverse_reversal).
        pool = self.c.reversals if self.c.reversals and draw.chance(0.06) else self.c.transactions
        if not pool:
            return None
        target = draw.pick(list(pool))
        path = f"/v1/transactions/{target.id}/reversal"
        return self._op(op_id, "reversal", self._staff(draw), path, {"reason": "a mistake"}, {"reverses": target.id})

    def credit_batch(self, draw: Draw, op_id: str) -> Op:
        """An activity: two to four volunteers credited at once by staff, all or nothing."""
        volunteers = list(self.c.volunteers)
        count = min(len(volunteers), draw.integer(2, 4))
        start = draw.integer(0, len(volunteers) - 1)
        chosen = [volunteers[(start + i) % len(volunteers)] for i in range(count)]
        minutes = amount(draw, self.c.policy, 4)
        body = {
            "community": self.c.slug,
            "service_date": SERVICE_DATE,
            "description": "activity",
            "credits": [{"member_id": m.id, "minutes": minutes} for m in chosen],
        }
        expect = {"credits": [{self.c.accounts["issuance"]: -minutes, m.account_id: minutes} for m in chosen]}
        return self._op(op_id, "credit_batch", self._staff(draw), "/v1/credit-batches", body, expect)

    # --- service requests: a flow of steps, each a keyed write ---

    def request_ask(self, draw: Draw, op_id: str) -> Op:
        """A resident asks for itself (own hours), or a coordinator books for it (any funding)."""
        member = draw.pick(self.c.residents)
        funding = draw.weighted(FUNDING)
        actor: Actor = self._self_or_staff(draw, member, "resident") if funding == "own" else self.c.coordinator
        minutes = amount(draw, self.c.policy, 4)
        body = {
            "member_id": member.id,
            "service_type": SERVICE_TYPE,
            "minutes": minutes,
            "scheduled_at": scheduled_at(),
            "funding": funding,
            "description": "help at home",
        }
        payer = {"own": member.account_id, "pool": self.c.accounts["pool"]}.get(funding)
        expect = {"member_id": member.id, "funding": funding, "minutes": minutes, "payer": payer}
        return self._op(op_id, "request_ask", actor, "/v1/service-requests", body, expect)

    def _request(self, draw: Draw, *statuses: str) -> RequestTarget | None:
        known = [r for r in self.c.requests.values() if r.status in statuses]
        return draw.pick(known) if known else None

    def _step(self, op_id: str, kind: str, actor: Actor, target: RequestTarget, body: Any, **expect: Any) -> Op:
        path = f"/v1/service-requests/{target.id}/{REQUEST_STEP_PATHS[kind]}"
        return self._op(op_id, kind, actor, path, body, {"request_id": target.id, **expect})

    def _provider_or_staff(self, draw: Draw, target: RequestTarget) -> Actor:
        provider = self.c.member(target.provider_member_id)
        return provider if provider is not None and draw.chance(0.65) else self.c.coordinator

    def _served_or_staff(self, draw: Draw, target: RequestTarget) -> Actor:
        served = self.c.member(target.member_id)
        return served if served is not None and draw.chance(0.6) else self.c.coordinator

    def request_claim(self, draw: Draw, op_id: str) -> Op | None:
        """A volunteer claims an open request for itself, or a coordinator assigns one to it."""
        target = self._request(draw, "open")
        if target is None:
            return None
        volunteer = draw.pick([m for m in self.c.volunteers if m.id != target.member_id])
        if draw.chance(0.7):
            return self._step(op_id, "request_claim", volunteer, target, {}, provider_member_id=volunteer.id)
        body = {"provider_member_id": volunteer.id}
        return self._step(op_id, "request_claim", self.c.coordinator, target, body, provider_member_id=volunteer.id)

    def request_check_in(self, draw: Draw, op_id: str) -> Op | None:
        target = self._request(draw, "assigned")
        if target is None:
            return None
        return self._step(op_id, "request_check_in", self._provider_or_staff(draw, target), target, {})

    def request_report(self, draw: Draw, op_id: str) -> Op | None:
        """The minutes worked: a whole number of units, at most the minutes asked (and held)."""
        target = self._request(draw, "in_progress")
        if target is None:
            return None
        unit = self.c.policy.unit_minutes
        minutes = draw.integer(1, max(1, target.minutes // unit)) * unit
        actor = self._provider_or_staff(draw, target)
        return self._step(op_id, "request_report", actor, target, {"minutes": minutes}, minutes=minutes)

    def request_confirm(self, draw: Draw, op_id: str) -> Op | None:
        """The member served confirms a report; a coordinator confirms one or settles a dispute,
        now and then with other minutes than those reported."""
        target = self._request(draw, "reported", "disputed")
        if target is None:
            return None
        actor = self._served_or_staff(draw, target) if target.status == "reported" else self.c.coordinator
        body: dict[str, Any] = {"rating": draw.integer(1, 5), "comment": "thank you"}
        minutes: int | None = None
        if actor is self.c.coordinator and draw.chance(0.4):
            unit = self.c.policy.unit_minutes
            minutes = draw.integer(1, max(1, target.minutes // unit)) * unit
            body["minutes"] = minutes
        return self._step(op_id, "request_confirm", actor, target, body, minutes=minutes)

    def request_dispute(self, draw: Draw, op_id: str) -> Op | None:
        target = self._request(draw, "reported")
        if target is None:
            return None
        actor = self._served_or_staff(draw, target)
        return self._step(op_id, "request_dispute", actor, target, {"reason": "it took less time"})

    def request_cancel(self, draw: Draw, op_id: str) -> Op | None:
        """The member served or a coordinator cancels (a disputed request: a coordinator)."""
        target = self._request(draw, *CANCELLABLE, "disputed")
        if target is None:
            return None
        actor = self._served_or_staff(draw, target) if target.status != "disputed" else self.c.coordinator
        return self._step(op_id, "request_cancel", actor, target, {"reason": "no longer needed"})

    def request_withdraw(self, draw: Draw, op_id: str) -> Op | None:
        """The provider gives the request up: it is open again."""
        target = self._request(draw, "assigned", "in_progress")
        provider = self.c.member(target.provider_member_id) if target is not None else None
        if target is None or provider is None:
            return None
        return self._step(op_id, "request_withdraw", provider, target, {"reason": "cannot come"})

    # --- reads ---

    def _read_target(self, draw: Draw) -> tuple[Actor, str]:
        """A member reading its own account, or the coordinator reading a member's or the pool."""
        if draw.chance(0.55):
            member = draw.pick(self.c.members)
            return member, member.account_id
        accounts = [m.account_id for m in self.c.members] + [self.c.accounts["pool"]]
        return self.c.coordinator, draw.pick(accounts)

    def _bounds(self, account_id: str) -> dict[str, Any]:
        return {"account_id": account_id, "floor": self.c.floor_of(account_id), "cap": self.c.cap_of(account_id)}

    def read_account(self, draw: Draw, op_id: str) -> Op:
        actor, account = self._read_target(draw)
        return self._read(op_id, "read_account", actor, f"/v1/accounts/{account}", self._bounds(account))

    def read_entries(self, draw: Draw, op_id: str) -> Op:
        actor, account = self._read_target(draw)
        limit = draw.pick((5, 20, 50))
        path = f"/v1/accounts/{account}/entries"
        return self._read(op_id, "read_entries", actor, path, self._bounds(account), limit=limit)

    def read_balance(self, draw: Draw, op_id: str) -> Op:
        actor, account = self._read_target(draw)
        path = f"/v1/accounts/{account}/balance"
        return self._read(op_id, "read_balance", actor, path, self._bounds(account))

    def read_transaction(self, draw: Draw, op_id: str) -> Op | None:
        pool = [*self.c.transactions, *self.c.reversals]
        if not pool:
            return None
        target = draw.pick(pool)
        expect = {"transaction_id": target.id, "postings": target.postings}
        return self._read(op_id, "read_transaction", self.c.coordinator, f"/v1/transactions/{target.id}", expect)


def scheduled_at() -> str:
    """When requests are for: the day after tomorrow at 09:00 UTC (the same for a whole run, so that
    the seed reproduces the bodies; within the 7 days back to 366 ahead a request may be for)."""
    day = datetime.now(UTC).date() + timedelta(days=2)
    return datetime.combine(day, time(9, 0), UTC).isoformat().replace("+00:00", "Z")


def _learn_request(community: Community, op: Op, attempt: Attempt) -> None:
    """A step's answer is the request as it then is; a refused step names the status it found."""
    body = attempt.body if isinstance(attempt.body, dict) else {}
    if attempt.outcome == OK:
        request_id, status = str(body["id"]), str(body["status"])
        if status in FINAL_STATUSES:
            community.requests.pop(request_id, None)
            return
        provider = body.get("provider_member_id")
        community.requests[request_id] = RequestTarget(
            request_id,
            str(body["member_id"]),
            str(body["funding"]),
            int(body["minutes"]),
            status,
            str(provider) if provider is not None else None,
        )
        while len(community.requests) > TARGETS_KEPT:
            community.requests.pop(next(iter(community.requests)))
    elif attempt.code == "invalid_transition" and "request_id" in op.expect:
        known = community.requests.get(op.expect["request_id"])
        current = body.get("current_status")
        if known is not None and isinstance(current, str):
            if current in FINAL_STATUSES:
                community.requests.pop(known.id, None)
            else:
                known.status = current


def _forget(targets: Any, target_id: str) -> None:
    """Drop an entry (by id) from a deque of targets."""
    kept = [t for t in targets if t.id != target_id]
    targets.clear()
    targets.extend(kept)


def learn(community: Community, op: Op, attempt: Attempt) -> None:
    """Remember what an answer created (targets for later operations) and forget what it used up."""
    body = attempt.body if isinstance(attempt.body, dict) else {}
    outcome, code = attempt.outcome, attempt.code
    try:
        if outcome == OK and op.kind in TRANSACTION_KINDS:
            target = TransactionTarget(str(body["id"]), postings_of(body))
            if op.kind == "reversal":
                community.reversals.append(target)
                _forget(community.transactions, op.expect["reverses"])
            else:
                community.transactions.append(target)
        if outcome == OK and op.kind == "credit_batch":
            for credit in body["transactions"]:
                community.transactions.append(TransactionTarget(str(credit["id"]), postings_of(credit)))
        elif op.kind == "reversal" and outcome == FAILED and code == "already_reversed":
            _forget(community.transactions, op.expect["reverses"])
        if op.kind == "hold" and outcome == OK:
            hold = HoldTarget(
                str(body["id"]),
                int(body["minutes"]),
                str(body["account_id"]),
                str(body["member_id"]),
                expires_soon="expires_at" in (op.body or {}),
            )
            community.holds.append(hold)
        if op.kind in ("capture", "release") and (outcome == OK or code == "hold_not_pending"):
            _forget(community.holds, op.expect["hold_id"])
        if op.kind in REQUEST_KINDS:
            _learn_request(community, op, attempt)
    except (KeyError, TypeError, ValueError):
        # A malformed answer: the checker reports it; the client just does not learn from it.
        return


async def run_client(runner: Runner, world: World, index: int, seed: int, stop: asyncio.Event) -> None:
    """One client: operations back to back until `stop`, pausing briefly after an answerless one."""
    community = world.communities[index % len(world.communities)]
    planner = Planner(world, community, str(index))
    rng = random.Random(f"{seed}:{index}")  # noqa: S311 -- a seeded, reproducible workload, not a secret.
    jitter = random.Random(f"{seed}:{index}:jitter")  # noqa: S311 -- likewise.
    n = 0
    async with runner.client() as http:
        while not stop.is_set():
            n += 1
            op = runner.register(planner.plan(Draw(rng), n))
            attempt = await runner.attempt(http, op, RUN)
            learn(community, op, attempt)
            if attempt.status is None or attempt.status >= 500:
                await asyncio.sleep(jitter.uniform(0.05, 0.25))
