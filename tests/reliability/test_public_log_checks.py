"""The harness's check of the log's order: acknowledged before another was sent ⇒ logged before it."""

from __future__ import annotations

import uuid

from reliability.history import RUN, Attempt, Op
from reliability.public_log import check_order


def _credit(started: float, finished: float) -> tuple[str, Op]:
    transaction_id = str(uuid.uuid4())
    body = {"id": transaction_id, "postings": [{"account_id": "a", "minutes": 15}, {"account_id": "b", "minutes": -15}]}
    attempt = Attempt(RUN, "rel-x-0", started, finished, status=201, body=body)
    op = Op(uuid.uuid4().hex, "c1", "credit", "s", "admin", "POST", "/v1/credits", "k", {}, {}, attempts=[attempt])
    return transaction_id, op


def test_overlapping_transactions_may_be_logged_in_either_order() -> None:
    first, a = _credit(0.0, 2.0)
    second, b = _credit(1.0, 3.0)  # sent before the first was acknowledged
    assert check_order([a, b], {first: 1, second: 0}) == []
    assert check_order([a, b], {first: 0, second: 1}) == []


def test_one_acknowledged_before_the_other_was_sent_must_come_first() -> None:
    first, a = _credit(0.0, 1.0)
    second, b = _credit(2.0, 3.0)
    third, c = _credit(4.0, 5.0)
    assert check_order([a, b, c], {first: 0, second: 1, third: 2}) == []
    (violation,) = check_order([a, b, c], {first: 1, second: 0, third: 2})
    assert violation.kind == "log_order"
    assert second in violation.message
    assert len(check_order([a, b, c], {first: 2, second: 1, third: 0})) == 2
