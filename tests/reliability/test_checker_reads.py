"""The checker's reads when a standby answers them: read-your-writes is promised per caller, so a
transaction acknowledged to the reader before it read must be found; another caller's may not be
replayed yet (only with standbys: from the primary a missing transaction is always a violation)."""

from __future__ import annotations

from reliability.checker import check_reads, own_write_reads
from reliability.history import RUN, Attempt, Op, request_id_for

POSTINGS = {"issuance": -60, "member": 60}
NOT_FOUND = {"status": 404, "code": "not_found"}


def _credit(actor: str, acknowledged_at: float) -> Op:
    body = {"id": "t1", "kind": "credit", "postings": [{"account_id": a, "minutes": m} for a, m in POSTINGS.items()]}
    answered = Attempt(RUN, request_id_for("0.1", 0), acknowledged_at - 0.1, acknowledged_at, 201, body)
    return Op(
        op_id="0.1", client="0", kind="credit", community="c", actor=actor, method="POST", path="/v1/credits",
        key="k", body={}, expect={"postings": POSTINGS}, attempts=[answered],
    )  # fmt: skip


def _read_back(actor: str, sent_at: float, found: bool) -> Op:
    answer = (200, {"id": "t1", "postings": [{"account_id": a, "minutes": m} for a, m in POSTINGS.items()]})
    status, body = answer if found else (404, NOT_FOUND)
    attempt = Attempt(RUN, request_id_for("1.1", 0), sent_at, sent_at + 0.1, status, body)
    return Op(
        op_id="1.1", client="1", kind="read_transaction", community="c", actor=actor, method="GET",
        path="/v1/transactions/t1", key=None, body=None, expect={"transaction_id": "t1", "postings": POSTINGS},
        attempts=[attempt],
    )  # fmt: skip


def test_another_callers_transaction_may_be_missing_on_a_standby() -> None:
    ops = [_credit("c1.coordinator", 1.0), _read_back("admin", 2.0, found=False)]
    assert check_reads(ops, reads_may_lag=True) == []
    assert own_write_reads(ops) == (0, 1)


def test_a_missing_transaction_is_a_violation_when_reads_cannot_lag() -> None:
    ops = [_credit("c1.coordinator", 1.0), _read_back("admin", 2.0, found=False)]
    assert [v.kind for v in check_reads(ops)] == ["read_refused"]


def test_the_readers_own_acknowledged_transaction_must_be_found_even_on_a_standby() -> None:
    ops = [_credit("c1.coordinator", 1.0), _read_back("c1.coordinator", 2.0, found=False)]
    violations = check_reads(ops, reads_may_lag=True)
    assert [(v.kind, v.op_id) for v in violations] == [("read_your_writes", "1.1")]
    assert "0.1" in violations[0].message


def test_a_read_sent_before_the_acknowledgement_is_not_a_read_of_ones_own_write() -> None:
    # The write was still being answered when the read left: the router promised nothing yet.
    ops = [_credit("c1.coordinator", 3.0), _read_back("c1.coordinator", 2.0, found=False)]
    assert check_reads(ops, reads_may_lag=True) == []


def test_own_writes_read_back_are_counted() -> None:
    ops = [_credit("c1.coordinator", 1.0), _read_back("c1.coordinator", 2.0, found=True)]
    assert check_reads(ops, reads_may_lag=True) == []
    assert own_write_reads(ops) == (1, 0)
