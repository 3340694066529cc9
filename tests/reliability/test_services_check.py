"""The checker's service request and activity batch rules catch each violation planted in a ledger.

A hand-made history (a resident's request for 60 minutes of its own hours, claimed, checked in,
reported at 45 minutes and confirmed) and the ledger a correct service would hold after it; then
one thing at a time is broken in that ledger, and the checker must name it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from reliability.checker import Ledger, LedgerAccount, LedgerHold, LedgerResolution, LedgerTransaction, check
from reliability.history import RUN, Attempt, Op, request_id_for
from reliability.services_check import LedgerBatch, LedgerRequest

C = "c"
ISSUANCE, POOL, ALICE, BOB = "acct-issuance", "acct-pool", "acct-alice", "acct-bob"
MEMBERS = {"m-alice": ALICE, "m-bob": BOB}
REQUEST = "r1"


def _op(op_id: str, kind: str, status: int, body: Any, expect: dict[str, Any], path: str = "/") -> Op:
    attempt = Attempt(RUN, request_id_for(op_id, 0), 0.0, 0.1, status, body)
    return Op(op_id, "0", kind, C, "coordinator", "POST", path, "k-" + op_id, {}, expect, attempts=[attempt])


def _request_body(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": REQUEST, "member_id": "m-alice", "funding": "own", "minutes": 60, "status": status} | extra


def _flow(confirm_minutes: int | None = None) -> list[Op]:
    """Asked (own hours, 60 minutes), claimed, checked in, reported at 45, confirmed."""
    ask_expect = {"member_id": "m-alice", "funding": "own", "minutes": 60, "payer": ALICE}
    step = {"request_id": REQUEST}
    return [
        _op("0.1", "request_ask", 201, _request_body("open", hold_id="h1"), ask_expect),
        _op("0.2", "request_claim", 200, _request_body("assigned", provider_member_id="m-bob"), step),
        _op("0.3", "request_check_in", 200, _request_body("in_progress", provider_member_id="m-bob"), step),
        _op("0.4", "request_report", 200, _request_body("reported", reported_minutes=45), step | {"minutes": 45}),
        _op(
            "0.5",
            "request_confirm",
            200,
            _request_body("completed", reported_minutes=45, transaction_id="t1"),
            step | {"minutes": confirm_minutes},
        ),
    ]


def _ledger(paid: int = 45, status: str = "completed", **changes: Any) -> Ledger:
    """What the service holds after the flow (the hold placed at check-in captured by t1)."""
    ledger = Ledger(now=100.0, member_accounts=dict(MEMBERS))
    request = LedgerRequest(
        REQUEST, C, "m-alice", "own", 60, status, 45, "m-bob", "h2", "t1" if status == "completed" else None,
        request_id_for("0.1", 0), ("h1", "h2"),
    )  # fmt: skip
    ledger.requests[REQUEST] = replace(request, **changes)
    ledger.holds["h1"] = LedgerHold("h1", C, ALICE, "m-alice", 60, 500.0, None)
    ledger.holds["h2"] = LedgerHold("h2", C, ALICE, "m-alice", 60, 900.0, None)
    ledger.resolutions["h1"] = LedgerResolution("h1", "released", None, None)
    balances = dict.fromkeys((ISSUANCE, POOL, ALICE, BOB), 0)
    if status == "completed":
        ledger.resolutions["h2"] = LedgerResolution("h2", "captured", "t1", None)
        postings = ((ALICE, -paid), (BOB, paid))
        ledger.transactions["t1"] = LedgerTransaction(
            "t1", C, "hold_capture", request_id_for("0.5", 0), postings, REQUEST
        )
        balances[ALICE], balances[BOB] = -paid, paid
    kinds = {ISSUANCE: "issuance", POOL: "pool", ALICE: "member", BOB: "member"}
    for account, balance in balances.items():
        ledger.accounts[account] = LedgerAccount(account, C, kinds[account], balance, 0)
    return ledger


def _kinds(ops: list[Op], ledger: Ledger) -> list[str]:
    return [v.kind for v in check(ops, ledger)]


def test_a_request_that_moved_its_hours_once_has_no_violations() -> None:
    assert check(_flow(), _ledger()) == []


def test_a_second_transaction_for_one_request_is_caught() -> None:
    ledger = _ledger()
    ledger.transactions["t2"] = replace(ledger.transactions["t1"], id="t2")
    assert "request_paid_wrongly" in _kinds(_flow(), ledger)


def test_hours_other_than_the_settled_minutes_are_caught() -> None:
    # The ledger moved the 60 minutes asked, not the 45 reported.
    assert "request_paid_wrongly" in _kinds(_flow(), _ledger(paid=60))
    # A coordinator settled at 30 minutes: the 45 reported must not have moved.
    assert "request_paid_wrongly" in _kinds(_flow(confirm_minutes=30), _ledger(paid=45))
    assert check(_flow(confirm_minutes=30), _ledger(paid=30)) == []


def test_a_cancelled_request_with_a_transaction_is_caught() -> None:
    flow = _flow()[:3]
    cancel = _op("0.6", "request_cancel", 200, _request_body("cancelled"), {"request_id": REQUEST})
    ledger = _ledger(status="cancelled")
    ledger.resolutions["h2"] = LedgerResolution("h2", "released", None, None)
    assert check([*flow, cancel], ledger) == []
    ledger.transactions["t1"] = LedgerTransaction(
        "t1", C, "hold_capture", request_id_for("0.6", 0), ((ALICE, -45), (BOB, 45)), REQUEST
    )
    assert "request_paid_wrongly" in _kinds([*flow, cancel], ledger)
    # Cancelled by no acknowledged cancel and not by the expiry job.
    ledger = _ledger(status="cancelled")
    ledger.resolutions["h2"] = LedgerResolution("h2", "released", None, None)
    assert _kinds(flow, ledger) == ["unclaimed"]
    assert check(flow, replace_request(ledger, expired=True)) == []


def replace_request(ledger: Ledger, **changes: Any) -> Ledger:
    ledger.requests[REQUEST] = replace(ledger.requests[REQUEST], **changes)
    return ledger


def test_holds_that_do_not_match_their_request_are_caught() -> None:
    # An in-progress request whose hold was released: its hours are no longer reserved.
    flow = _flow()[:3]
    ledger = _ledger(status="in_progress")
    assert check(flow, ledger) == []
    ledger.resolutions["h2"] = LedgerResolution("h2", "released", None, None)
    assert "request_hold" in _kinds(flow, ledger)
    # A hold of fewer minutes than the request.
    ledger = _ledger(status="in_progress")
    ledger.holds["h2"] = replace(ledger.holds["h2"], minutes=30)
    assert "request_hold" in _kinds(flow, ledger)
    # The hold that check-in replaced left pending.
    ledger = _ledger(status="in_progress")
    del ledger.resolutions["h1"]
    assert "request_hold" in _kinds(flow, ledger)


def test_a_completion_nobody_acknowledged_is_caught_unless_the_job_did_it() -> None:
    flow = _flow()[:4]
    assert "unclaimed" in _kinds(flow, _ledger())
    assert check(flow, _ledger(auto_confirmed=True)) == []


def test_a_failed_ask_that_left_a_request_is_caught() -> None:
    refused = _op("0.1", "request_ask", 422, {"status": 422, "code": "insufficient_balance"}, {})
    ledger = _ledger(status="open", provider_member_id=None, hold_id="h1", hold_ids=("h1",))
    del ledger.resolutions["h1"]
    assert "failed_left_trace" in _kinds([refused], ledger)


def _batch(op_id: str, status: int = 201) -> Op:
    minutes = 30
    credits = [
        {"id": f"t-{op_id}-{i}", "kind": "credit", "postings": [
            {"account_id": ISSUANCE, "minutes": -minutes}, {"account_id": to, "minutes": minutes}]}
        for i, to in enumerate((ALICE, BOB))
    ]  # fmt: skip
    body: Any = {"id": "b-" + op_id, "transactions": credits} if status == 201 else {"code": "balance_cap_exceeded"}
    expect = {"credits": [{ISSUANCE: -minutes, ALICE: minutes}, {ISSUANCE: -minutes, BOB: minutes}]}
    return _op(op_id, "credit_batch", status, body, expect, "/v1/credit-batches")


def _batch_ledger(op: Op, batch: tuple[str, ...] | None = None) -> Ledger:
    ledger = Ledger(now=100.0, member_accounts=dict(MEMBERS))
    balances = dict.fromkeys((ISSUANCE, POOL, ALICE, BOB), 0)
    for item in op.first.body.get("transactions", []):
        postings = tuple((p["account_id"], p["minutes"]) for p in item["postings"])
        ledger.transactions[item["id"]] = LedgerTransaction(item["id"], C, "credit", op.first.request_id, postings)
        for account, minutes in postings:
            balances[account] += minutes
    for account, balance in balances.items():
        ledger.accounts[account] = LedgerAccount(account, C, "member", balance, 0)
    if batch is not None:
        ledger.batches["b-" + op.op_id] = LedgerBatch("b-" + op.op_id, C, batch, op.first.request_id)
    return ledger


def test_an_activity_batch_exists_once_with_all_its_items() -> None:
    op = _batch("0.1")
    items = tuple(t["id"] for t in op.first.body["transactions"])
    assert check([op], _batch_ledger(op, items)) == []
    assert "lost" in _kinds([op], _batch_ledger(op, None))
    assert "wrong_batch" in _kinds([op], _batch_ledger(op, items[:1]))


def test_a_failed_activity_batch_that_left_a_record_is_caught() -> None:
    op = _batch("0.1", status=422)
    assert check([op], _batch_ledger(op)) == []
    assert _kinds([op], _batch_ledger(op, ())) == ["failed_left_trace"]
