"""The figures every reliability command ends with."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reliability.checker import Ledger
from reliability.history import FAILED, INDETERMINATE, OK, REPLAY, RESOLVE, RUN, Op
from reliability.violation import Violation

VIOLATIONS_SHOWN = 40


@dataclass(frozen=True)
class Fault:
    at_seconds: float
    kind: str
    detail: str
    # When the victim was back (the service healthy, or ready again after PostgreSQL's restart).
    until_seconds: float | None = None


@dataclass(frozen=True)
class StandbyFigures:
    """What a standby the service read from did in a run (reliability.standby)."""

    # Reads by where they were answered (standby, primary), summed over the service's lives.
    reads: dict[str, int]
    # Of the standby's reads, those after the primary's first crash (None: it was not killed).
    reads_after_primary_crash: int | None
    lives: int
    # Transactions read back by the caller they had been acknowledged to: read-your-writes checked.
    own_write_reads: int
    # Another caller's transaction not found yet: allowed, the standby had not replayed it.
    others_not_yet_replayed: int
    # How long the standby took to replay all of the primary's WAL once the service had stopped.
    catch_up_seconds: float | None
    # Answers 5xx (all during an outage, or each is a violation).
    server_errors: int
    transactions: int
    accounts: int
    consistent: bool

    def lines(self) -> list[str]:
        catch_up = "never" if self.catch_up_seconds is None else f"{self.catch_up_seconds:.2f} s"
        same = "equals" if self.consistent else "DIFFERS FROM"
        after = (
            ""
            if self.reads_after_primary_crash is None
            else f", {self.reads_after_primary_crash} of them after the primary's first crash"
        )
        return [
            f"standby: answered {self.reads.get('standby', 0)} reads{after}; the primary "
            f"{self.reads.get('primary', 0)} (over {self.lives} service lives); read-your-writes checked on "
            f"{self.own_write_reads} read-backs of the reader's own transactions; {self.others_not_yet_replayed} "
            f"of other callers' not replayed yet (allowed); {self.server_errors} answers 5xx, each during an outage",
            f"  caught up {catch_up} after the service stopped; its ledger {same} the primary's "
            f"({self.transactions} transactions, {self.accounts} accounts)",
        ]


@dataclass
class Figures:
    command: str
    reproduce: str
    seed: int
    clients: int
    seconds: float
    ops: Sequence[Op]
    violations: Sequence[Violation]
    history_path: Path
    faults: Sequence[Fault] = field(default_factory=list)
    ledger: Ledger | None = None
    service_errors: Sequence[str] = field(default_factory=list)
    standby: StandbyFigures | None = None

    def kinds_seen(self) -> set[str]:
        """Operation kinds that succeeded at least once, plus `expiry` when a hold expired, and
        `auto_confirm` and `request_expiry` when the service's jobs stepped a request."""
        seen = {op.kind for op in self.ops if op.final == OK}
        if self.holds_expired():
            seen.add("expiry")
        requests = self.ledger.requests.values() if self.ledger is not None else []
        if any(r.auto_confirmed for r in requests):
            seen.add("auto_confirm")
        if any(r.expired for r in requests):
            seen.add("request_expiry")
        return seen

    def holds_expired(self) -> int:
        if self.ledger is None:
            return 0
        marked = {r.hold_id for r in self.ledger.resolutions.values() if r.status == "expired"}
        unmarked = {
            h.id
            for h in self.ledger.holds.values()
            if h.id not in self.ledger.resolutions and h.expires_at <= self.ledger.now
        }
        return len(marked | unmarked)

    def render(self) -> str:
        return "\n".join(self._lines())

    def _operations(self) -> list[str]:
        run = [op for op in self.ops if op.client not in ("s", "f")]
        by_kind: dict[str, Counter[str]] = defaultdict(Counter)
        codes: dict[str, Counter[str]] = defaultdict(Counter)
        for op in run:
            by_kind[op.kind][op.outcome] += 1
            if op.outcome == FAILED and op.first.code:
                codes[op.kind][op.first.code] += 1
        writes = sum(1 for op in run if op.is_write)
        rate = len(run) / self.seconds if self.seconds else 0.0
        lines = [
            f"operations run: {len(run)} (writes {writes}, reads {len(run) - writes}) in {self.seconds:.1f} s, "
            f"{rate:.0f}/s, by {self.clients} clients; plus {len(self.ops) - len(run)} setup and final reads",
            f"  {'kind':<17}{'ok':>7}{'failed':>8}{'indet.':>8}  failure codes",
        ]
        for kind in sorted(by_kind):
            counts = by_kind[kind]
            detail = ", ".join(f"{code} {n}" for code, n in codes[kind].most_common())
            lines.append(f"  {kind:<17}{counts[OK]:>7}{counts[FAILED]:>8}{counts[INDETERMINATE]:>8}  {detail}".rstrip())
        return lines

    def _holds(self) -> list[str]:
        if self.ledger is None:
            return []
        statuses = Counter(r.status for r in self.ledger.resolutions.values())
        return [
            f"holds: placed {len(self.ledger.holds)}, captured {statuses['captured']}, "
            f"released {statuses['released']}, expired {self.holds_expired()}"
        ]

    def _requests(self) -> list[str]:
        if self.ledger is None:
            return []
        requests = self.ledger.requests.values()
        statuses = Counter(r.status for r in requests)
        funding = Counter(r.funding for r in requests if r.status == "completed")
        by_funding = ", ".join(f"{name} {n}" for name, n in sorted(funding.items()))
        by_jobs = sum(r.auto_confirmed for r in requests), sum(r.expired for r in requests)
        return [
            f"service requests: {len(requests)} asked; "
            + ", ".join(f"{status} {n}" for status, n in sorted(statuses.items()))
            + f"; completed by funding: {by_funding or 'none'}; auto-confirmed by the job {by_jobs[0]}, "
            f"cancelled by the expiry job {by_jobs[1]}",
            f"activity batches: {len(self.ledger.batches)}, "
            f"{sum(len(b.transaction_ids) for b in self.ledger.batches.values())} credits",
        ]

    def _faults(self) -> list[str]:
        kinds = Counter(f.kind for f in self.faults)
        summary = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
        lines = [
            f"faults injected: {len(self.faults)}" + (f" ({summary}; times on the history's clock)" if summary else "")
        ]
        lines += [f"  at {f.at_seconds:6.2f} s  {f.kind}: {f.detail}" for f in self.faults]
        return lines

    def _settling(self) -> list[str]:
        indeterminate = [op for op in self.ops if op.is_write and op.outcome == INDETERMINATE]
        existed = sum(1 for op in indeterminate if op.final == OK)
        absent = sum(1 for op in indeterminate if op.final == FAILED)
        unresolved = len(indeterminate) - existed - absent
        replays = [a for op in self.ops for a in op.attempts_in(REPLAY)]
        attempts = Counter(a.phase for op in self.ops for a in op.attempts)
        return [
            f"indeterminate writes: {len(indeterminate)}; retried with their keys: {existed} exist once, "
            f"{absent} not at all (refused on a rule), {unresolved} unresolved",
            f"inputs tried: {sum(attempts.values())} requests (run {attempts[RUN]}, resolve {attempts[RESOLVE]}, "
            f"replay {attempts[REPLAY]})",
            f"replays checked: {len(replays)}",
        ]

    def _lines(self) -> list[str]:
        lines = [f"== timebank reliability: {self.command}, seed {self.seed} =="]
        lines += self._operations()
        lines += self._holds()
        lines += self._requests()
        lines += self._faults()
        lines += self._settling()
        lines += self.standby.lines() if self.standby is not None else []
        lines.append(f"violations found: {len(self.violations)}")
        by_kind = Counter(v.kind for v in self.violations)
        if by_kind:
            lines.append("  by kind: " + ", ".join(f"{kind} {n}" for kind, n in by_kind.most_common()))
        lines += [f"  {v}" for v in self.violations[:VIOLATIONS_SHOWN]]
        if len(self.violations) > VIOLATIONS_SHOWN:
            lines.append(f"  ... and {len(self.violations) - VIOLATIONS_SHOWN} more")
        if self.service_errors:
            log = self.history_path.with_suffix(".service.log")
            lines.append(f"service errors logged: {len(self.service_errors)} (log kept: {log})")
            lines += [f"  {e}" for e in self.service_errors[:10]]
        lines.append(f"history: {self.history_path}")
        lines.append(f"reproduce: {self.reproduce}")
        return lines
