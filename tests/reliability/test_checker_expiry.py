"""The checker's rule for holds refused with invalid_expiry: right only when expires_at had passed
by the time the service answered (found by a long run on a loaded machine: a short hold sent 1 s
before its expiry was answered after it)."""

from __future__ import annotations

from datetime import UTC, datetime

from reliability.checker import check_answers
from reliability.history import RESOLVE, RUN, Attempt, Op, request_id_for

SENT_AT = datetime(2026, 12, 1, 22, 33, 20, tzinfo=UTC).timestamp()


def _hold(expires_at: str, answer_seconds: float, retried: bool = False) -> Op:
    refusal = {"status": 422, "code": "invalid_expiry"}
    refused = Attempt(RUN, request_id_for("0.1", 0), 0.0, answer_seconds, 422, refusal, sent_at=SENT_AT)
    if retried:  # the first attempt's answer was lost; the retry with its key is sent 1 s later
        lost = Attempt(RUN, request_id_for("0.1", 0), 0.0, 0.5, None, None, error="ReadTimeout", sent_at=SENT_AT)
        again = Attempt(RESOLVE, request_id_for("0.1", 1), 1.0, 1.0 + answer_seconds, 422, refusal, sent_at=SENT_AT + 1)
        tried = [lost, again]
    else:
        tried = [refused]
    return Op(
        op_id="0.1", client="0", kind="hold", community="c", actor="resident", method="POST", path="/v1/holds",
        key="k", body={"member_id": "m", "minutes": 30, "expires_at": expires_at},
        expect={"account_id": "a", "member_id": "m", "minutes": 30}, attempts=tried,
    )  # fmt: skip


def test_a_hold_that_expired_while_the_service_answered_may_be_refused() -> None:
    # Sent 0.5 s before its expiry, answered 1.2 s later.
    assert check_answers([_hold("2026-12-01T22:33:20.500Z", 1.2)]) == []


def test_a_hold_retried_after_its_expiry_may_be_refused() -> None:
    assert check_answers([_hold("2026-12-01T22:33:20.500Z", 0.1, retried=True)]) == []


def test_a_hold_refused_while_its_expiry_was_still_ahead_is_a_violation() -> None:
    # Answered 0.1 s after sending, expiring 2 s after sending: the refusal is wrong.
    violations = check_answers([_hold("2026-12-01T22:33:22.000Z", 0.1)])
    assert [v.kind for v in violations] == ["unexpected_error"]
