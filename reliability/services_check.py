"""Checking service requests and activity (credit) batches against the final ledger.

What the history and the database must agree on, after every run:

- every acknowledged request exists once, for the member, funding and minutes asked; every request
  in the database was acknowledged to exactly one `request_ask` (else a failed or unsettled ask
  left a trace, or one ask wrote twice);
- a completed request moved its hours exactly once: exactly one transaction names it
  (`service_request_id`), the one it names, from the payer (the member's account for `own`, the
  pool for `pool`, issuance for `community`) to its provider, by the settled minutes (those of
  the acknowledged confirmation, a coordinator's override included, else the reported ones when
  the auto-confirm job completed it); it was completed by an acknowledged confirmation or by the
  job, never otherwise;
- a request that is not completed has no transaction; a cancelled one was cancelled by an
  acknowledged cancel or by the expiry job;
- every hold matches its request: none for `community`; otherwise the current hold reserves the
  request's minutes on the payer's account and is captured by the request's transaction when
  completed, released or expired when cancelled, still unresolved while open, assigned,
  in_progress, reported or disputed; a hold replaced at check-in was released, with the same
  minutes on the same account;
- an acknowledged confirmation or cancellation is what the database holds;
- every acknowledged activity batch exists once, with all its items' transactions in order, and
  every batch in the database was acknowledged (a failed one left nothing).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from reliability.history import OK, Op
from reliability.violation import Violation, unclaimed

if TYPE_CHECKING:
    from reliability.checker import Ledger

# Statuses in which a request's hold must still be unresolved.
HOLDING = frozenset({"open", "assigned", "in_progress", "reported", "disputed"})


@dataclass(frozen=True)
class LedgerRequest:
    id: str
    community: str
    member_id: str
    funding: str
    minutes: int
    status: str
    reported_minutes: int | None
    provider_member_id: str | None
    hold_id: str | None
    transaction_id: str | None
    # The X-Request-ID of the request that created it.
    request_id: str | None
    # Every hold the request ever had: the one placed when it was asked, and those check-in placed.
    hold_ids: tuple[str, ...] = ()
    # Completed by the auto-confirm job; cancelled by the expiry job.
    auto_confirmed: bool = False
    expired: bool = False


@dataclass(frozen=True)
class LedgerBatch:
    id: str
    community: str
    transaction_ids: tuple[str, ...]
    # The X-Request-ID that wrote it (its transactions').
    request_id: str | None


async def load_requests(conn: asyncpg.Connection) -> dict[str, LedgerRequest]:
    rows = await conn.fetch(
        """
        select r.id::text as id, c.slug, r.member_id::text as member_id, r.funding, r.minutes, r.status,
               r.reported_minutes, r.provider_member_id::text as provider_member_id, r.hold_id::text as hold_id,
               r.transaction_id::text as transaction_id,
               (select e.request_id from timebank.audit_events e
                 where e.subject_id = r.id and e.action = 'service_request.created' order by e.seq limit 1)
                 as request_id,
               array(select distinct h from timebank.audit_events e,
                            lateral (values (e.details->>'hold_id'), (e.details->>'replaced_hold_id')) v(h)
                      where e.subject_id = r.id and h is not null
                        and e.action in ('service_request.created', 'service_request.checked_in')) as hold_ids,
               exists (select 1 from timebank.audit_events e where e.subject_id = r.id and e.actor = 'system'
                          and e.action = 'service_request.completed') as auto_confirmed,
               exists (select 1 from timebank.audit_events e where e.subject_id = r.id and e.actor = 'system'
                          and e.action = 'service_request.cancelled') as expired
          from timebank.service_requests r join timebank.communities c on c.id = r.community_id
        """
    )
    requests = {}
    for row in rows:
        requests[row["id"]] = LedgerRequest(
            row["id"], row["slug"], row["member_id"], row["funding"], row["minutes"], row["status"],
            row["reported_minutes"], row["provider_member_id"], row["hold_id"], row["transaction_id"],
            row["request_id"], tuple(row["hold_ids"]), row["auto_confirmed"], row["expired"],
        )  # fmt: skip
    return requests


async def load_batches(conn: asyncpg.Connection) -> dict[str, LedgerBatch]:
    rows = await conn.fetch(
        """
        select b.id::text as id, c.slug,
               array(select t.transaction_id::text from timebank.credit_batch_transactions t
                      where t.credit_batch_id = b.id order by t.position) as transaction_ids,
               (select tx.request_id from timebank.credit_batch_transactions t
                  join timebank.transactions tx on tx.id = t.transaction_id
                 where t.credit_batch_id = b.id order by t.position limit 1) as request_id
          from timebank.credit_batches b join timebank.communities c on c.id = b.community_id
        """
    )
    return {
        row["id"]: LedgerBatch(row["id"], row["slug"], tuple(row["transaction_ids"]), row["request_id"]) for row in rows
    }


async def load_member_accounts(conn: asyncpg.Connection) -> dict[str, str]:
    rows = await conn.fetch(
        "select member_id::text as m, id::text as a from timebank.accounts where member_id is not null"
    )
    return {row["m"]: row["a"] for row in rows}


def request_hold_ids(ledger: Ledger) -> set[str]:
    """Holds that belong to service requests: checked here, not as holds an operation placed."""
    return {h for r in ledger.requests.values() for h in (*r.hold_ids, r.hold_id) if h is not None}


def _ok(ops: Sequence[Op], kind: str) -> list[Op]:
    return [op for op in ops if op.kind == kind and op.final == OK and isinstance(op.final_body, dict)]


def _system_account(ledger: Ledger, community: str, kind: str) -> str | None:
    return next((a.id for a in ledger.accounts.values() if a.community == community and a.kind == kind), None)


def payer_account(ledger: Ledger, request: LedgerRequest) -> str | None:
    if request.funding == "own":
        return ledger.member_accounts.get(request.member_id)
    return _system_account(ledger, request.community, "pool" if request.funding == "pool" else "issuance")


def _settled_minutes(request: LedgerRequest, confirms: list[Op]) -> int | None:
    """The minutes a completed request must have moved: the acknowledged confirmation's (a
    coordinator's override, else the report's), or the report's when the job completed it."""
    if confirms:
        body: dict[str, Any] = confirms[0].final_body
        override = confirms[0].expect.get("minutes")
        return override if isinstance(override, int) else body.get("reported_minutes")
    return request.reported_minutes if request.auto_confirmed else None


def expected_request_postings(ledger: Ledger, request: LedgerRequest, minutes: int) -> Counter[tuple[str, int]]:
    payer = payer_account(ledger, request)
    provider = ledger.member_accounts.get(request.provider_member_id or "")
    return Counter({(str(payer), -minutes): 1, (str(provider), minutes): 1})


class RequestChecker:
    """The checks of one run's service requests; `paid` collects each completed request's expected
    postings (by transaction), for the balance check."""

    def __init__(self, ops: Sequence[Op], ledger: Ledger) -> None:
        self.ops = ops
        self.ledger = ledger
        self.ops_by_id = {op.op_id: op for op in ops}
        self.violations: list[Violation] = []
        self.paid: dict[str, Counter[tuple[str, int]]] = {}
        self.asks: dict[str, Op] = {}
        for op in _ok(ops, "request_ask"):
            request_id = str(op.final_body.get("id"))
            other = self.asks.setdefault(request_id, op)
            if other is not op:
                self._add("duplicate", f"service request {request_id} acknowledged to {other.op_id} too", op)
        self.confirms: dict[str, list[Op]] = defaultdict(list)
        for op in _ok(ops, "request_confirm"):
            self.confirms[op.expect["request_id"]].append(op)
        self.cancels: dict[str, list[Op]] = defaultdict(list)
        for op in _ok(ops, "request_cancel"):
            self.cancels[op.expect["request_id"]].append(op)
        self.naming: dict[str, list[str]] = defaultdict(list)
        for tx in ledger.transactions.values():
            if tx.service_request_id is not None:
                self.naming[tx.service_request_id].append(tx.id)

    def _add(self, kind: str, message: str, op: Op | None = None) -> None:
        self.violations.append(Violation(kind, message, op.op_id if op else None))

    def run(self) -> list[Violation]:
        for request_id, op in self.asks.items():
            self._check_ask(op, self.ledger.requests.get(request_id))
        for request in self.ledger.requests.values():
            if request.id not in self.asks:
                self.violations.append(unclaimed("service request", request.id, request.request_id, self.ops_by_id))
            self._check_payment(request)
            self._check_holds(request)
        for request_id in self.naming.keys() - self.ledger.requests.keys():
            self._add("request_paid_wrongly", f"transactions {self.naming[request_id]} name no service request")
        return self.violations

    def _check_ask(self, op: Op, stored: LedgerRequest | None) -> None:
        want = op.expect
        if stored is None:
            self._add("lost", f"acknowledged service request {op.final_body.get('id')} is not in the ledger", op)
        elif (stored.member_id, stored.funding, stored.minutes, stored.community) != (
            want["member_id"], want["funding"], want["minutes"], op.community,
        ):  # fmt: skip
            self._add("wrong_request", f"ledger has {stored}, asked {want}", op)

    def _check_payment(self, request: LedgerRequest) -> None:
        naming = self.naming.get(request.id, [])
        confirms = self.confirms.get(request.id, [])
        for op in confirms:
            answered = op.final_body.get("transaction_id")
            if request.status != "completed" or answered != request.transaction_id:
                self._add(
                    "lost",
                    f"confirmation of request {request.id} acknowledged with transaction {answered}; the ledger "
                    f"has it {request.status} with transaction {request.transaction_id}",
                    op,
                )
        if len(confirms) > 1:
            names = ", ".join(op.op_id for op in confirms)
            self._add("duplicate", f"service request {request.id} confirmed by {names}", confirms[1])
        for op in self.cancels.get(request.id, []):
            if request.status != "cancelled":
                self._add("lost", f"acknowledged cancellation of request {request.id}; it is {request.status}", op)
        if request.status != "completed":
            if naming or request.transaction_id is not None:
                self._add(
                    "request_paid_wrongly",
                    f"{request.status} request {request.id} names transaction {request.transaction_id}; "
                    f"transactions naming it: {naming}",
                )
            if request.status == "cancelled" and not (self.cancels.get(request.id) or request.expired):
                self._add("unclaimed", f"request {request.id} was cancelled by no acknowledged cancel nor the job")
            return
        if len(naming) != 1 or naming[0] != request.transaction_id:
            self._add(
                "request_paid_wrongly",
                f"completed request {request.id} names transaction {request.transaction_id}; "
                f"transactions naming it: {naming} (exactly one, the same, must)",
            )
            return
        if not confirms and not request.auto_confirmed:
            self._add("unclaimed", f"request {request.id} was completed by no acknowledged confirmation nor the job")
            return
        minutes = _settled_minutes(request, confirms)
        stored = self.ledger.transactions[naming[0]]
        if not isinstance(minutes, int) or minutes > request.minutes:
            self._add("request_paid_wrongly", f"request {request.id} settled {minutes} of {request.minutes} minutes")
            return
        wanted = expected_request_postings(self.ledger, request, minutes)
        kind = "credit" if request.funding == "community" else "hold_capture"
        if Counter(stored.postings) != wanted or stored.kind != kind or stored.community != request.community:
            self._add(
                "request_paid_wrongly",
                f"request {request.id} ({request.funding}, settled {minutes} minutes) was paid by {stored.kind} "
                f"{sorted(stored.postings)}, expected {kind} {sorted(wanted.elements())}",
                confirms[0] if confirms else None,
            )
        self.paid[stored.id] = wanted

    def _check_holds(self, request: LedgerRequest) -> None:
        if request.funding == "community":
            if request.hold_id is not None or request.hold_ids:
                self._add("request_hold", f"community-funded request {request.id} has holds {request.hold_ids}")
            return
        payer = payer_account(self.ledger, request)
        hold = self.ledger.holds.get(request.hold_id or "")
        if hold is None:
            self._add("request_hold", f"request {request.id} ({request.funding}) has no hold ({request.hold_id})")
            return
        resolution = self.ledger.resolutions.get(hold.id)
        status = resolution.status if resolution else None
        if (hold.minutes, hold.account_id) != (request.minutes, payer):
            self._add(
                "request_hold",
                f"request {request.id} of {request.minutes} minutes on {payer}: hold {hold.id} holds "
                f"{hold.minutes} on {hold.account_id}",
            )
        if request.status == "completed":
            right = status == "captured" and resolution is not None
            right = right and resolution is not None and resolution.transaction_id == request.transaction_id
        elif request.status == "cancelled":
            right = status in ("released", "expired")
        else:
            right = status is None
        if not right:
            what = f"{request.status} request {request.id}: its hold {hold.id} is {status or 'open'}"
            self._add("request_hold", what)
        for replaced in set(request.hold_ids) - {hold.id}:
            old = self.ledger.holds.get(replaced)
            old_resolution = self.ledger.resolutions.get(replaced)
            if (
                old is None
                or (old.minutes, old.account_id) != (request.minutes, payer)
                or old_resolution is None
                or old_resolution.status != "released"
            ):
                self._add("request_hold", f"request {request.id}: replaced hold {replaced} is {old}, {old_resolution}")


def check_requests(ops: Sequence[Op], ledger: Ledger) -> tuple[list[Violation], dict[str, Counter[tuple[str, int]]]]:
    """Every violation of the service requests, and the postings each completed request must have made."""
    checker = RequestChecker(ops, ledger)
    return checker.run(), checker.paid


def check_batches(ops: Sequence[Op], ledger: Ledger) -> list[Violation]:
    """Each acknowledged batch is in the ledger once with every item; no batch lacks its acknowledgement."""
    violations: list[Violation] = []
    acked: dict[str, Op] = {}
    for op in _ok(ops, "credit_batch"):
        body = op.final_body
        batch_id = str(body.get("id"))
        items = body.get("transactions") if isinstance(body.get("transactions"), list) else []
        answered = tuple(str(t.get("id")) for t in items if isinstance(t, dict))
        if acked.setdefault(batch_id, op) is not op:
            violations.append(Violation("duplicate", f"credit batch {batch_id} acknowledged twice", op.op_id))
        stored = ledger.batches.get(batch_id)
        if stored is None:
            violations.append(Violation("lost", f"acknowledged credit batch {batch_id} is not in the ledger", op.op_id))
        elif stored.transaction_ids != answered or len(answered) != len(op.expect["credits"]):
            violations.append(
                Violation(
                    "wrong_batch",
                    f"credit batch {batch_id} of {len(op.expect['credits'])} items: acknowledged {answered}, "
                    f"ledger has {stored.transaction_ids}",
                    op.op_id,
                )
            )
        elif stored.community != op.community:
            violations.append(Violation("wrong_batch", f"credit batch {batch_id} is in {stored.community}", op.op_id))
    ops_by_id = {op.op_id: op for op in ops}
    for batch in ledger.batches.values():
        if batch.id not in acked:
            violations.append(unclaimed("credit batch", batch.id, batch.request_id, ops_by_id))
    return violations
