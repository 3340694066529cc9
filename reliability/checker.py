"""Checking a history against the final ledger.

`check(ops, ledger)` is pure: it takes the operations (with every attempt and answer) and a
snapshot of what the database holds, and returns every violation it can prove:

- every acknowledged transaction exists exactly once, with the acknowledged postings, and those
  postings are what the request asked for; acknowledged holds and hold resolutions exist likewise;
- nothing in the ledger lacks an acknowledging operation: a row written by a failed operation, a
  second row for one operation (a duplicate), or a row of an operation never settled;
- every indeterminate write was settled by retrying its key (ok, or failed on a rule);
- failures carry only the codes the operation can legitimately get; no 500 was ever answered;
- no read ever showed a balance below its floor or above its cap, nor an inconsistent statement,
  and a transaction read back has its acknowledged postings; a transaction acknowledged to the
  reader before it read is always found (read-your-writes), and one acknowledged to another caller
  too unless reads are answered by standbys, which may not have replayed it yet;
- a retry with the same key answered the original status and body, marked as a replay;
- service requests and activity batches as reliability.services_check says: each completed
  request moved its hours exactly once, by the settled minutes; no other request has a
  transaction; every hold matches its request; each acknowledged batch exists once with all its
  items, and none exists unacknowledged;
- each account's balance is the sum of the acknowledged postings (and of the completed requests'
  payments); each community sums to zero;
- `timebank verify` (its checks, run on the snapshot's connection) found nothing.

`load_ledger(conn)` reads the snapshot through the owner connection.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from reliability.history import (
    FAILED,
    NOT_DELIVERED,
    OK,
    READ_KINDS,
    REPLAY,
    TRANSACTION_KINDS,
    UNRESOLVED,
    Attempt,
    Op,
)
from reliability.services_check import (
    LedgerBatch,
    LedgerRequest,
    check_batches,
    check_requests,
    load_batches,
    load_member_accounts,
    load_requests,
    request_hold_ids,
)
from reliability.violation import Violation, unclaimed
from timebank.ledger.verify import verify

# The failure codes each operation can get without anything being wrong.
ALLOWED_CODES: dict[str, frozenset[str]] = {
    "credit": frozenset({"balance_cap_exceeded", "amount_not_multiple_of_unit", "not_a_volunteer"}),
    "gift": frozenset({"insufficient_balance", "balance_cap_exceeded", "amount_not_multiple_of_unit"}),
    "donation": frozenset({"insufficient_balance", "amount_not_multiple_of_unit"}),
    "pool_grant": frozenset({"insufficient_balance", "balance_cap_exceeded", "amount_not_multiple_of_unit"}),
    "redemption": frozenset({"insufficient_balance", "balance_cap_exceeded", "amount_not_multiple_of_unit"}),
    "hold": frozenset({"insufficient_balance", "amount_not_multiple_of_unit"}),
    # A pending hold guarantees its minutes: capturing it can only hit the provider's cap.
    "capture": frozenset({"hold_not_pending", "balance_cap_exceeded"}),
    "release": frozenset({"hold_not_pending"}),
    # All or nothing: one volunteer over the cap, or one off-unit amount, refuses the batch.
    "credit_batch": frozenset({"balance_cap_exceeded", "amount_not_multiple_of_unit"}),
    "reversal": frozenset(
        {"already_reversed", "cannot_reverse_reversal", "insufficient_balance", "balance_cap_exceeded"}
    ),
    # Service requests. Clients race for the same requests, and the jobs step them too: a step from
    # a status the request has just left is 409 invalid_transition; one whose caller is no longer
    # entitled (the provider withdrew, the request became disputed) is 403 forbidden.
    "request_ask": frozenset({"insufficient_balance", "amount_not_multiple_of_unit"}),
    "request_claim": frozenset({"invalid_transition"}),
    "request_check_in": frozenset({"invalid_transition", "forbidden"}),
    "request_report": frozenset({"invalid_transition", "forbidden"}),
    # The provider's balance may be at its cap.
    "request_confirm": frozenset({"invalid_transition", "forbidden", "balance_cap_exceeded"}),
    "request_dispute": frozenset({"invalid_transition"}),
    "request_cancel": frozenset({"invalid_transition", "forbidden"}),
    "request_withdraw": frozenset({"invalid_transition", "forbidden"}),
}


@dataclass(frozen=True)
class LedgerTransaction:
    id: str
    community: str
    kind: str
    request_id: str
    postings: tuple[tuple[str, int], ...]
    # The service request it pays for, if any.
    service_request_id: str | None = None


@dataclass(frozen=True)
class LedgerHold:
    id: str
    community: str
    account_id: str
    member_id: str
    minutes: int
    expires_at: float
    request_id: str | None


@dataclass(frozen=True)
class LedgerResolution:
    hold_id: str
    status: str
    transaction_id: str | None
    request_id: str | None


@dataclass(frozen=True)
class LedgerAccount:
    id: str
    community: str
    kind: str
    balance_minutes: int
    held_minutes: int


@dataclass
class Ledger:
    """What the database holds at the end of a run."""

    transactions: dict[str, LedgerTransaction] = field(default_factory=dict)
    holds: dict[str, LedgerHold] = field(default_factory=dict)
    resolutions: dict[str, LedgerResolution] = field(default_factory=dict)
    accounts: dict[str, LedgerAccount] = field(default_factory=dict)
    requests: dict[str, LedgerRequest] = field(default_factory=dict)
    batches: dict[str, LedgerBatch] = field(default_factory=dict)
    member_accounts: dict[str, str] = field(default_factory=dict)
    now: float = 0.0
    verify_violations: list[tuple[str, str]] = field(default_factory=list)


async def load_ledger(conn: asyncpg.Connection) -> Ledger:
    """Read every transaction, hold, resolution and account, and run `timebank verify`'s checks."""
    ledger = Ledger()
    for row in await conn.fetch(
        """
        select t.id::text as id, c.slug, t.kind, t.request_id, t.service_request_id::text as service_request_id,
               array_agg(p.account_id::text order by p.id) as accounts, array_agg(p.minutes order by p.id) as minutes
          from timebank.transactions t
          join timebank.communities c on c.id = t.community_id
          left join timebank.postings p on p.transaction_id = t.id
         group by t.id, c.slug
        """
    ):
        postings = tuple((a, m) for a, m in zip(row["accounts"], row["minutes"], strict=True) if a is not None)
        ledger.transactions[row["id"]] = LedgerTransaction(
            row["id"], row["slug"], row["kind"], row["request_id"], postings, row["service_request_id"]
        )
    for row in await conn.fetch(
        """
        select h.id::text as id, c.slug, h.account_id::text as account_id, h.member_id::text as member_id, h.minutes,
               extract(epoch from h.expires_at)::float8 as expires_at,
               (select e.request_id from timebank.audit_events e
                 where e.subject_id = h.id and e.action = 'hold.placed' order by e.seq limit 1) as request_id
          from timebank.holds h join timebank.communities c on c.id = h.community_id
        """
    ):
        ledger.holds[row["id"]] = LedgerHold(
            row["id"],
            row["slug"],
            row["account_id"],
            row["member_id"],
            row["minutes"],
            row["expires_at"],
            row["request_id"],
        )
    for row in await conn.fetch(
        """
        select r.hold_id::text as hold_id, r.status, r.transaction_id::text as transaction_id,
               (select e.request_id from timebank.audit_events e
                 where e.subject_id = r.hold_id and e.action = 'hold.' || r.status order by e.seq limit 1) as request_id
          from timebank.hold_resolutions r
        """
    ):
        ledger.resolutions[row["hold_id"]] = LedgerResolution(
            row["hold_id"], row["status"], row["transaction_id"], row["request_id"]
        )
    for row in await conn.fetch(
        """
        select a.id::text as id, c.slug, a.kind, a.balance_minutes, a.held_minutes
          from timebank.accounts a join timebank.communities c on c.id = a.community_id
        """
    ):
        ledger.accounts[row["id"]] = LedgerAccount(
            row["id"], row["slug"], row["kind"], row["balance_minutes"], row["held_minutes"]
        )
    ledger.requests = await load_requests(conn)
    ledger.batches = await load_batches(conn)
    ledger.member_accounts = await load_member_accounts(conn)
    ledger.now = await conn.fetchval("select extract(epoch from now())::float8")
    await conn.execute("set search_path = timebank")
    report = await verify(conn)
    ledger.verify_violations = list(report.violations)
    return ledger


# --- acknowledgements ---------------------------------------------------------------------------


@dataclass
class Acks:
    """What the service acknowledged: ledger objects by id, with the operation that got each."""

    transactions: dict[str, Op] = field(default_factory=dict)
    holds: dict[str, Op] = field(default_factory=dict)
    resolutions: dict[str, list[Op]] = field(default_factory=lambda: defaultdict(list))


def _posting_pairs(body: Any) -> Counter[tuple[str, int]] | None:
    """An answer's postings as a multiset of (account, minutes), or None when malformed."""
    if not isinstance(body, dict) or not isinstance(body.get("postings"), list):
        return None
    pairs: Counter[tuple[str, int]] = Counter()
    for posting in body["postings"]:
        if not isinstance(posting, dict) or not isinstance(posting.get("minutes"), int):
            return None
        pairs[(str(posting.get("account_id")), posting["minutes"])] += 1
    return pairs


def _transaction_bodies(op: Op) -> list[Any]:
    """The transactions an acknowledged write answered: its body, or each credit of a batch."""
    body = op.final_body
    if op.kind == "credit_batch":
        items = body.get("transactions") if isinstance(body, dict) else None
        return list(items) if isinstance(items, list) else []
    return [body]


def _transaction_body(op: Op, tx_id: str) -> Any:
    """The answered body of transaction `tx_id`, acknowledged to `op`."""
    return next((b for b in _transaction_bodies(op) if isinstance(b, dict) and str(b.get("id")) == tx_id), None)


def _object_id(op: Op) -> str | None:
    body = op.final_body
    value = body.get("id") if isinstance(body, dict) else None
    return str(value) if value is not None else None


def acknowledgements(ops: Iterable[Op]) -> tuple[Acks, list[Violation]]:
    acks = Acks()
    violations: list[Violation] = []
    for op in ops:
        if not op.is_write or op.final != OK:
            continue
        object_id = _object_id(op)
        if object_id is None:
            violations.append(
                Violation("wrong_response", f"{op.kind} answered without an id: {op.final_body}", op.op_id)
            )
            continue
        tx_ids = [object_id] if op.kind in TRANSACTION_KINDS else []
        if op.kind == "credit_batch":
            tx_ids = [str(b.get("id")) for b in _transaction_bodies(op) if isinstance(b, dict)]
        for tx_id in tx_ids:
            other = acks.transactions.setdefault(tx_id, op)
            if other is not op:
                violations.append(
                    Violation("duplicate", f"transaction {tx_id} acknowledged to {other.op_id} too", op.op_id)
                )
        if op.kind == "hold":
            acks.holds[object_id] = op
        if op.kind in ("capture", "release"):
            acks.resolutions[op.expect["hold_id"]].append(op)
    return acks, violations


def expected_postings(op: Op, acks: Acks) -> Counter[tuple[str, int]] | None:
    """The postings the request asked for, or None when they depend on an unacknowledged object."""
    if "postings" in op.expect:
        return Counter(dict.fromkeys(op.expect["postings"].items(), 1))
    if op.kind == "reversal":
        original = acks.transactions.get(op.expect["reverses"])
        pairs = _posting_pairs(_transaction_body(original, op.expect["reverses"])) if original else None
        return Counter({(a, -m): n for (a, m), n in pairs.items()}) if pairs is not None else None
    if op.kind == "capture":
        hold = acks.holds.get(op.expect["hold_id"])
        if hold is None or not isinstance(hold.final_body, dict):
            return None
        minutes = op.expect["minutes"] or hold.final_body.get("minutes")
        if not isinstance(minutes, int):
            return None
        account = str(hold.final_body.get("account_id"))
        return Counter({(account, -minutes): 1, (str(op.expect["target"]), minutes): 1})
    return None


# --- the checks ---------------------------------------------------------------------------------


def _hold_expired_before_its_answer(op: Op, code: str | None) -> bool:
    """A hold whose expires_at had passed by the time the service answered is rightly refused (422
    invalid_expiry): a short hold sent late on a loaded machine, or retried after its first attempt
    never committed. One still ahead of the answer must have been placed."""
    if op.kind != "hold" or code != "invalid_expiry" or not isinstance(op.body, dict):
        return False
    expires_at = op.body.get("expires_at")
    final = op.final_attempt
    if not isinstance(expires_at, str) or final is None:
        return False
    answered_at = final.sent_at + max(final.finished - final.started, 0.0)
    return datetime.fromisoformat(expires_at).timestamp() <= answered_at


def check_answers(ops: Iterable[Op]) -> list[Violation]:
    """No 500s; failures only with the codes an operation may get; every write settled; fresh keys
    never answered as replays."""
    violations: list[Violation] = []
    for op in ops:
        for attempt in op.attempts:
            if attempt.status == 500:
                violations.append(
                    Violation("server_error", f"{op.kind} {attempt.phase} answered 500: {attempt.body}", op.op_id)
                )
        if op.attempts and op.first.replayed:
            violations.append(Violation("wrong_response", f"{op.kind} with a fresh key answered as a replay", op.op_id))
        final = op.final
        if final == UNRESOLVED:
            codes = [a.code for a in op.attempts]
            violations.append(Violation("unresolved", f"{op.kind} never settled: attempts ended {codes}", op.op_id))
        elif final == FAILED and op.is_write:
            code = op.final_attempt.code if op.final_attempt else None
            if (
                code != NOT_DELIVERED
                and code not in ALLOWED_CODES.get(op.kind, frozenset())
                and not _hold_expired_before_its_answer(op, code)
            ):
                body = op.final_body
                violations.append(Violation("unexpected_error", f"{op.kind} refused with {code}: {body}", op.op_id))
    return violations


def _check_transaction_op(op: Op, acks: Acks, ledger: Ledger) -> list[Violation]:
    body = op.final_body
    tx_id = str(body["id"])
    violations: list[Violation] = []
    answered = _posting_pairs(body)
    expected_kind = TRANSACTION_KINDS[op.kind]
    if body.get("kind") != expected_kind or answered is None or sum(m * n for (_, m), n in answered.items()) != 0:
        violations.append(Violation("wrong_response", f"{op.kind} acknowledged {body}", op.op_id))
        return violations
    wanted = expected_postings(op, acks)
    if wanted is not None and answered != wanted:
        violations.append(
            Violation("wrong_postings", f"{op.kind} asked for {dict(wanted)}, acknowledged {dict(answered)}", op.op_id)
        )
    stored = ledger.transactions.get(tx_id)
    if stored is None:
        violations.append(
            Violation("lost", f"acknowledged {op.kind} transaction {tx_id} is not in the ledger", op.op_id)
        )
        return violations
    if Counter(stored.postings) != answered or stored.kind != expected_kind or stored.community != op.community:
        violations.append(
            Violation(
                "wrong_postings",
                f"transaction {tx_id}: ledger has {stored.kind} {sorted(stored.postings)} in {stored.community}, "
                f"acknowledged {expected_kind} {sorted(answered.elements())} in {op.community}",
                op.op_id,
            )
        )
    return violations


def _check_batch_op(op: Op, ledger: Ledger) -> list[Violation]:
    """A credit batch: one credit per item, in order, each with the postings asked for, all in the ledger."""
    bodies = _transaction_bodies(op)
    items = op.expect["credits"]
    if len(bodies) != len(items):
        return [
            Violation("wrong_response", f"credit batch of {len(items)} acknowledged {len(bodies)} credits", op.op_id)
        ]
    violations: list[Violation] = []
    for body, postings in zip(bodies, items, strict=True):
        answered = _posting_pairs(body)
        wanted = Counter(dict.fromkeys(((a, m) for a, m in postings.items()), 1))
        if not isinstance(body, dict) or body.get("kind") != "credit" or answered != wanted:
            violations.append(
                Violation("wrong_postings", f"credit batch asked {postings}, acknowledged {body}", op.op_id)
            )
            continue
        stored = ledger.transactions.get(str(body["id"]))
        if stored is None:
            violations.append(
                Violation("lost", f"acknowledged batch credit {body['id']} is not in the ledger", op.op_id)
            )
        elif Counter(stored.postings) != answered or stored.kind != "credit" or stored.community != op.community:
            violations.append(
                Violation("wrong_postings", f"batch credit {stored.id}: ledger has {sorted(stored.postings)}", op.op_id)
            )
    return violations


def _check_hold_op(op: Op, ledger: Ledger) -> list[Violation]:
    body = op.final_body
    hold_id = str(body["id"])
    want = op.expect
    if (body.get("minutes"), body.get("account_id"), body.get("member_id")) != (
        want["minutes"],
        want["account_id"],
        want["member_id"],
    ) or body.get("status") not in ("pending", "expired"):
        return [Violation("wrong_response", f"hold acknowledged as {body}, asked {want}", op.op_id)]
    stored = ledger.holds.get(hold_id)
    if stored is None:
        return [Violation("lost", f"acknowledged hold {hold_id} is not in the ledger", op.op_id)]
    if (stored.minutes, stored.account_id) != (want["minutes"], want["account_id"]):
        return [Violation("wrong_hold", f"hold {hold_id}: ledger {stored}, asked {want}", op.op_id)]
    return []


def _check_resolution_op(op: Op, ledger: Ledger) -> list[Violation]:
    hold_id = op.expect["hold_id"]
    body = op.final_body
    resolution = ledger.resolutions.get(hold_id)
    if op.kind == "release":
        if body.get("id") != hold_id or body.get("status") != "released":
            return [Violation("wrong_response", f"release of hold {hold_id} acknowledged as {body}", op.op_id)]
        if resolution is None or resolution.status != "released":
            return [Violation("lost", f"acknowledged release of hold {hold_id}; ledger has {resolution}", op.op_id)]
        return []
    if body.get("hold_id") != hold_id:
        return [Violation("wrong_response", f"capture of hold {hold_id} acknowledged as {body}", op.op_id)]
    if resolution is None or resolution.status != "captured" or resolution.transaction_id != str(body.get("id")):
        return [Violation("lost", f"acknowledged capture of hold {hold_id}; ledger has {resolution}", op.op_id)]
    return []


def check_acknowledged(ops: Sequence[Op], acks: Acks, ledger: Ledger) -> list[Violation]:
    """Every acknowledged write is in the ledger once, as acknowledged and as asked."""
    violations: list[Violation] = []
    for op in ops:
        if not op.is_write or op.final != OK or _object_id(op) is None:
            continue
        if op.kind in TRANSACTION_KINDS:
            violations += _check_transaction_op(op, acks, ledger)
        if op.kind == "credit_batch":
            violations += _check_batch_op(op, ledger)
        if op.kind == "hold":
            violations += _check_hold_op(op, ledger)
        if op.kind in ("capture", "release"):
            violations += _check_resolution_op(op, ledger)
    for hold_id, resolvers in acks.resolutions.items():
        if len(resolvers) > 1:
            names = ", ".join(f"{o.kind} {o.op_id}" for o in resolvers)
            violations.append(Violation("resolved_twice", f"hold {hold_id} resolved by {names}", resolvers[1].op_id))
    return violations


def checkunclaimed(ops: Sequence[Op], acks: Acks, ledger: Ledger) -> list[Violation]:
    """Nothing is in the ledger that the service did not acknowledge to exactly one operation."""
    ops_by_id = {op.op_id: op for op in ops}
    violations: list[Violation] = []
    # A service request's transaction, holds and their resolutions are checked with the request.
    of_requests = request_hold_ids(ledger)
    for tx in ledger.transactions.values():
        if tx.id not in acks.transactions and tx.service_request_id is None:
            violations.append(unclaimed("transaction", tx.id, tx.request_id, ops_by_id))
    for hold in ledger.holds.values():
        if hold.id not in acks.holds and hold.id not in of_requests:
            violations.append(unclaimed("hold", hold.id, hold.request_id, ops_by_id))
    for resolution in ledger.resolutions.values():
        if resolution.hold_id in of_requests:
            continue
        resolvers = acks.resolutions.get(resolution.hold_id, [])
        if resolution.status == "expired":
            expired = ledger.holds.get(resolution.hold_id)
            if expired is not None and expired.expires_at > ledger.now:
                violations.append(
                    Violation("early_expiry", f"hold {expired.id} marked expired before {expired.expires_at}")
                )
            continue
        wanted = "capture" if resolution.status == "captured" else "release"
        if not any(op.kind == wanted for op in resolvers):
            what = f"{resolution.status} resolution of hold"
            violations.append(unclaimed(what, resolution.hold_id, resolution.request_id, ops_by_id))
    return violations


def _bounds_message(value: Any, floor: int | None, cap: int | None) -> str | None:
    if not isinstance(value, int):
        return f"{value!r} is not a whole number of minutes"
    if floor is not None and value < floor:
        return f"{value} is below the floor {floor}"
    if cap is not None and value > cap:
        return f"{value} is above the cap {cap}"
    return None


def _check_account_read(body: dict[str, Any], floor: int | None, cap: int | None) -> list[str]:
    problems = []
    for name in ("balance_minutes", "available_minutes"):
        message = _bounds_message(body.get(name), floor, cap if name == "balance_minutes" else None)
        if message:
            problems.append(f"{name} {message}")
    balance, held, available = body.get("balance_minutes"), body.get("held_minutes"), body.get("available_minutes")
    if not (isinstance(held, int) and held >= 0 and isinstance(balance, int) and available == balance - held):
        problems.append(f"balance {balance}, held {held}, available {available} do not agree")
    if body.get("floor_minutes") != floor or body.get("cap_minutes") != cap:
        problems.append(f"floor/cap shown {body.get('floor_minutes')}/{body.get('cap_minutes')}, policy {floor}/{cap}")
    return problems


def _check_entries_read(body: dict[str, Any], floor: int | None, cap: int | None) -> list[str]:
    items = body.get("items")
    if not isinstance(items, list):
        return [f"no items: {body}"]
    problems = []
    for item in items:
        message = _bounds_message(item.get("balance_after_minutes"), floor, cap)
        if message:
            problems.append(f"entry of {item.get('transaction_id')}: balance_after {message}")
    for newer, older in itertools.pairwise(items):
        after, minutes, before = (
            newer.get("balance_after_minutes"),
            newer.get("minutes"),
            older.get("balance_after_minutes"),
        )
        if not (isinstance(after, int) and isinstance(minutes, int) and after - minutes == before):
            problems.append(f"entry of {newer.get('transaction_id')} does not follow from the one before it")
    return problems


def acknowledged_to_reader_before(writer: Op | None, reader: Op, attempt: Attempt) -> bool:
    """Whether the write was acknowledged to the same caller before it sent the read: what
    read-your-writes promises it sees, on a standby as on the primary."""
    acknowledged = writer.final_attempt if writer is not None else None
    return (
        writer is not None
        and acknowledged is not None
        and writer.actor == reader.actor
        and acknowledged.finished <= attempt.started
    )


def _transaction_not_yet_replayed(op: Op, attempt: Attempt, acks: Acks, reads_may_lag: bool) -> Violation | None:
    """A transaction read back as not found: right only on a standby that has not replayed another
    caller's write yet (read-your-writes is promised per caller); the reader's own is a violation."""
    writer = acks.transactions.get(str(op.expect.get("transaction_id")))
    if acknowledged_to_reader_before(writer, op, attempt):
        assert writer is not None
        return Violation(
            "read_your_writes",
            f"{op.path}: not found, though acknowledged to the same caller ({writer.op_id}) before the read",
            op.op_id,
        )
    if reads_may_lag:
        return None
    return Violation("read_refused", f"{op.kind} {op.path}: {attempt.body}", op.op_id)


def check_reads(ops: Sequence[Op], acks: Acks | None = None, reads_may_lag: bool = False) -> list[Violation]:
    """No read ever showed a forbidden balance, a broken statement, or a transaction unlike its ack.

    With `reads_may_lag` (reads answered by standbys) a transaction another caller wrote may be
    not found yet; one the reader itself was acknowledged before reading may never be.
    """
    acks = acks if acks is not None else acknowledgements(ops)[0]
    violations: list[Violation] = []
    for op in ops:
        if op.kind not in READ_KINDS:
            continue
        attempt = op.final_attempt
        if attempt is None:
            continue
        if attempt.outcome == FAILED:
            if op.kind == "read_transaction" and attempt.code == "not_found":
                lagging = _transaction_not_yet_replayed(op, attempt, acks, reads_may_lag)
                violations += [lagging] if lagging is not None else []
            elif attempt.code != NOT_DELIVERED:
                violations.append(Violation("read_refused", f"{op.kind} {op.path}: {attempt.body}", op.op_id))
            continue
        body = attempt.body if isinstance(attempt.body, dict) else {}
        floor, cap = op.expect.get("floor"), op.expect.get("cap")
        if op.kind in ("read_account", "final_account"):
            problems = _check_account_read(body, floor, cap)
        elif op.kind == "read_entries":
            problems = _check_entries_read(body, floor, cap)
        elif op.kind == "read_balance":
            message = _bounds_message(body.get("balance_minutes"), floor, cap)
            problems = [f"balance_minutes {message}"] if message else []
        else:
            wanted = Counter(dict.fromkeys(op.expect["postings"].items(), 1))
            problems = [] if _posting_pairs(body) == wanted else [f"read back {body}, acknowledged {dict(wanted)}"]
        violations += [Violation("read_violation", f"{op.kind} {op.path}: {p}", op.op_id) for p in problems]
    return violations


def own_write_reads(ops: Sequence[Op]) -> tuple[int, int]:
    """(reads of a transaction acknowledged to the reader before it read: read-your-writes checked,
    reads of another caller's transaction answered not found: not replayed yet where they were read)."""
    acks, _ = acknowledgements(ops)
    own = others_missing = 0
    for op in ops:
        attempt = op.final_attempt if op.kind == "read_transaction" else None
        if attempt is None or attempt.code == NOT_DELIVERED:
            continue
        writer = acks.transactions.get(str(op.expect.get("transaction_id")))
        if acknowledged_to_reader_before(writer, op, attempt):
            own += 1
        elif attempt.code == "not_found":
            others_missing += 1
    return own, others_missing


def check_replays(ops: Iterable[Op]) -> list[Violation]:
    """A retry with the same key and body answered exactly what the operation first settled on."""
    violations: list[Violation] = []
    for op in ops:
        reference = op.final_attempt
        if reference is None:
            continue
        for attempt in op.attempts_in(REPLAY):
            if not attempt.determinate or attempt.code == NOT_DELIVERED:
                continue
            if attempt.status != reference.status or attempt.body != reference.body or not attempt.replayed:
                violations.append(
                    Violation(
                        "replay_mismatch",
                        f"{op.kind} first answered {reference.status} {reference.body}; the same key later "
                        f"answered {attempt.status} {attempt.body} (replayed header: {attempt.replayed})",
                        op.op_id,
                    )
                )
    return violations


def check_balances(
    ops: Iterable[Op], acks: Acks, ledger: Ledger, paid: dict[str, Counter[tuple[str, int]]] | None = None
) -> list[Violation]:
    """Each account holds the sum of its acknowledged postings and of the postings each completed
    service request had to make (`paid`); each community sums to zero."""
    expected: Counter[str] = Counter()
    for tx_id, tx_op in acks.transactions.items():
        for (account_id, minutes), n in (_posting_pairs(_transaction_body(tx_op, tx_id)) or Counter()).items():
            expected[account_id] += minutes * n
    for postings in (paid or {}).values():
        for (account_id, minutes), n in postings.items():
            expected[account_id] += minutes * n
    violations: list[Violation] = []
    sums: Counter[str] = Counter()
    for account in ledger.accounts.values():
        sums[account.community] += account.balance_minutes
        if account.balance_minutes != expected[account.id]:
            violations.append(
                Violation(
                    "balance_mismatch",
                    f"{account.kind} account {account.id}: ledger {account.balance_minutes}, "
                    f"acknowledged postings sum to {expected[account.id]}",
                )
            )
    for community in sorted({a.community for a in ledger.accounts.values()}):
        if sums[community] != 0:
            violations.append(Violation("community_not_zero", f"community {community} sums to {sums[community]}"))
    for op in ops:
        if op.kind == "final_account" and op.final == OK and isinstance(op.final_body, dict):
            shown = op.final_body.get("balance_minutes")
            account_id = op.expect["account_id"]
            if shown != expected[account_id]:
                violations.append(
                    Violation(
                        "balance_mismatch",
                        f"account {account_id} reads {shown}, acknowledged postings sum to {expected[account_id]}",
                        op.op_id,
                    )
                )
    return violations


def check(ops: Sequence[Op], ledger: Ledger, reads_may_lag: bool = False) -> list[Violation]:
    """Every violation the history and the final ledger prove; `reads_may_lag` when the service read
    from standbys (see check_reads)."""
    acks, violations = acknowledgements(ops)
    violations += check_answers(ops)
    violations += check_acknowledged(ops, acks, ledger)
    violations += checkunclaimed(ops, acks, ledger)
    violations += check_reads(ops, acks, reads_may_lag)
    violations += check_replays(ops)
    request_violations, paid = check_requests(ops, ledger)
    violations += request_violations
    violations += check_batches(ops, ledger)
    violations += check_balances(ops, acks, ledger, paid)
    violations += [Violation("verify", f"{name}: {message}") for name, message in ledger.verify_violations]
    return violations
