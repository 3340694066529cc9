"""The crash run's standby, in parts: its reads counted from the service's /metrics, its ledger
compared with the primary's, a standby that answered nothing found out, and no 5xx outside an outage."""

from __future__ import annotations

from collections import Counter

from reliability.checker import Ledger, LedgerAccount, LedgerTransaction
from reliability.figures import Fault
from reliability.history import RUN, Attempt, Op, request_id_for
from reliability.processes import reads_by_target
from reliability.standby import compare_ledgers, server_errors, unused
from timebank.replicas.metrics import ReplicaMetrics


def test_reads_are_summed_by_target_from_the_services_metrics() -> None:
    metrics = ReplicaMetrics()
    metrics.reads.labels(target="standby", standby="localhost:5432/a").inc(3)
    metrics.reads.labels(target="standby", standby="localhost:5433/a").inc(2)
    metrics.reads.labels(target="primary", standby="").inc(4)
    metrics.fallbacks.labels(reason="not_replayed").inc(7)
    assert reads_by_target(metrics.render().decode()) == {"standby": 5, "primary": 4}


def test_no_metrics_no_reads() -> None:
    assert reads_by_target("") == Counter()


def _ledger(balance: int, verify: list[tuple[str, str]] | None = None, now: float = 1.0) -> Ledger:
    ledger = Ledger(now=now, verify_violations=verify or [])
    ledger.transactions["t1"] = LedgerTransaction("t1", "c", "credit", "rel-0.1-0", (("i", -balance), ("a", balance)))
    ledger.accounts["a"] = LedgerAccount("a", "c", "member", balance, 0)
    return ledger


def test_the_same_ledger_read_at_another_moment_is_consistent() -> None:
    assert compare_ledgers(_ledger(60), _ledger(60, now=9.0)) == []


def test_a_balance_that_differs_on_the_standby_is_a_violation() -> None:
    violations = compare_ledgers(_ledger(60), _ledger(90))
    assert [v.kind for v in violations] == ["standby_diverged"]
    assert "accounts a" in violations[0].message


def test_a_transaction_missing_on_the_standby_is_a_violation() -> None:
    standby = _ledger(60)
    del standby.transactions["t1"]
    violations = compare_ledgers(_ledger(60), standby)
    assert "transactions t1 only on the primary" in violations[0].message


def test_verify_failing_on_the_standby_is_a_violation() -> None:
    violations = compare_ledgers(_ledger(60), _ledger(60, verify=[("balances", "account a is off")]))
    assert [v.kind for v in violations] == ["standby_diverged"]
    assert "account a is off" in violations[0].message


def test_a_standby_that_answered_no_read_was_not_attached() -> None:
    assert [v.kind for v in unused(Counter(primary=120))] == ["standby_unused"]
    assert unused(Counter(primary=120, standby=1)) == []


def _answered(status: int, started: float) -> Op:
    attempt = Attempt(RUN, request_id_for("0.1", 0), started, started + 0.1, status, {"code": "unavailable"})
    return Op(
        op_id="0.1", client="0", kind="read_account", community="c", actor="admin", method="GET",
        path="/v1/accounts/a", key=None, body=None, expect={}, attempts=[attempt],
    )  # fmt: skip


def test_a_5xx_is_allowed_only_during_an_outage() -> None:
    outage = [Fault(2.0, "postgres kill", "", until_seconds=3.5)]
    assert server_errors([_answered(503, 2.5), _answered(200, 9.0)], outage) == (1, [])
    count, violations = server_errors([_answered(503, 9.0)], outage)
    assert count == 1
    assert [(v.kind, v.op_id) for v in violations] == [("server_error", "0.1")]
    assert server_errors([_answered(503, 2.5)], [])[1] != []
