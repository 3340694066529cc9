"""The history of a workload: each operation, every attempt at it, and what came back.

An operation is one logical request (a credit, a read, ...). Its first attempt runs during the
workload; an attempt whose outcome is indeterminate (no answer, a timeout, a 5xx) is retried with
the same Idempotency-Key and body after recovery (phase `resolve`), and some determinate ones are
sent again to prove that the key replays the first answer (phase `replay`).

The history is written as JSON lines, one `invoke` and one `complete` record per attempt, so a run
can be checked again from its file (`load_history`). Tokens are never written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

OK = "ok"
FAILED = "failed"
INDETERMINATE = "indeterminate"
UNRESOLVED = "unresolved"

RUN = "run"
RESOLVE = "resolve"
REPLAY = "replay"

# A request that never reached the server: the TCP connection was refused.
NOT_DELIVERED = "not_delivered"

# Operation kinds that write through an Idempotency-Key, and the transaction kind each one creates.
TRANSACTION_KINDS: dict[str, str] = {
    "credit": "credit",
    "gift": "transfer",
    "donation": "donation",
    "pool_grant": "pool_grant",
    "redemption": "redemption",
    "capture": "hold_capture",
    "reversal": "reversal",
}
# A service request's flow (timebank/services): each step is a write answered with the request as it
# then is. The hours move when it is confirmed (or by the auto-confirm job), in the one transaction
# that names the request; `withdraw` is the provider's cancel (the request is open again).
REQUEST_STEP_PATHS: dict[str, str] = {
    "request_claim": "assign",
    "request_check_in": "check-in",
    "request_report": "report",
    "request_confirm": "confirm",
    "request_dispute": "dispute",
    "request_cancel": "cancel",
    "request_withdraw": "cancel",
}
REQUEST_KINDS = frozenset({"request_ask", *REQUEST_STEP_PATHS})
# A credit batch (an activity, timebank/crediting) writes one credit transaction per item, all or nothing.
WRITE_KINDS = frozenset({*TRANSACTION_KINDS, "hold", "release", "credit_batch", *REQUEST_KINDS})
# What the service's jobs did during a run, counted like the kinds: a request confirmed by the
# auto-confirm job (7 days after its report), one cancelled by the expiry job (its hold expired).
JOB_KINDS = frozenset({"auto_confirm", "request_expiry"})
READ_KINDS = frozenset({"read_account", "read_entries", "read_balance", "read_transaction", "final_account"})


def classify(status: int | None, body: Any, error: str | None) -> tuple[str, str | None]:
    """(outcome, code) of one attempt: 2xx ok; 4xx failed; 5xx, timeouts and resets indeterminate."""
    if status is None:
        if error == "connect":
            return FAILED, NOT_DELIVERED
        return INDETERMINATE, error
    code = body.get("code") if isinstance(body, dict) and isinstance(body.get("code"), str) else None
    if 200 <= status < 300:
        return OK, None
    if 400 <= status < 500:
        return FAILED, code or f"http_{status}"
    return INDETERMINATE, code or f"http_{status}"


@dataclass
class Attempt:
    """One HTTP exchange for an operation."""

    phase: str
    request_id: str
    started: float
    finished: float = 0.0
    status: int | None = None
    body: Any = None
    error: str | None = None
    replayed: bool = False
    # Wall-clock time the attempt was sent (Unix seconds), for rules about moments such as expires_at.
    sent_at: float = 0.0

    @property
    def outcome(self) -> str:
        return classify(self.status, self.body, self.error)[0]

    @property
    def code(self) -> str | None:
        return classify(self.status, self.body, self.error)[1]

    @property
    def determinate(self) -> bool:
        return self.outcome != INDETERMINATE


@dataclass
class Op:
    """One logical request of the workload."""

    op_id: str
    client: str
    kind: str
    community: str
    actor: str
    method: str
    path: str
    key: str | None
    body: Any
    expect: dict[str, Any]
    params: dict[str, Any] | None = None
    attempts: list[Attempt] = field(default_factory=list)
    token: str = field(default="", repr=False, compare=False)

    @property
    def is_write(self) -> bool:
        return self.kind in WRITE_KINDS

    @property
    def first(self) -> Attempt:
        return self.attempts[0]

    @property
    def outcome(self) -> str:
        """What the workload saw at the time."""
        return self.first.outcome if self.attempts else UNRESOLVED

    @property
    def final_attempt(self) -> Attempt | None:
        """The attempt that settles the operation: the first one if determinate, else the last
        determinate retry, else none."""
        if not self.attempts:
            return None
        if self.first.determinate:
            return self.first
        for attempt in reversed(self.attempts):
            if attempt.phase == RESOLVE and attempt.determinate:
                return attempt
        return None

    @property
    def final(self) -> str:
        """ok or failed once settled; an unsettled write is unresolved, an unsettled read indeterminate."""
        attempt = self.final_attempt
        if attempt is not None:
            return attempt.outcome
        return UNRESOLVED if self.is_write else INDETERMINATE

    @property
    def final_body(self) -> Any:
        attempt = self.final_attempt
        return attempt.body if attempt is not None else None

    def attempts_in(self, phase: str) -> list[Attempt]:
        return [a for a in self.attempts if a.phase == phase]


def request_id_for(op_id: str, attempt: int) -> str:
    """The X-Request-ID of an attempt; the ledger stores it, so every row names its attempt."""
    return f"rel-{op_id}-{attempt}"


def op_id_of(request_id: str | None) -> str | None:
    """The operation a stored request id belongs to (None for ids the harness did not send)."""
    if not request_id or not request_id.startswith("rel-") or "-" not in request_id[4:]:
        return None
    return request_id[4:].rsplit("-", 1)[0]


def _invoke_record(op: Op, index: int, attempt: Attempt) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event": "invoke",
        "op": op.op_id,
        "attempt": index,
        "phase": attempt.phase,
        "request_id": attempt.request_id,
        "t": round(attempt.started, 4),
        "sent_at": round(attempt.sent_at, 4),
    }
    if index == 0:
        record |= {
            "client": op.client,
            "kind": op.kind,
            "community": op.community,
            "actor": op.actor,
            "method": op.method,
            "path": op.path,
            "params": op.params,
            "key": op.key,
            "body": op.body,
            "expect": op.expect,
        }
    return record


def _complete_record(op: Op, index: int, attempt: Attempt) -> dict[str, Any]:
    return {
        "event": "complete",
        "op": op.op_id,
        "attempt": index,
        "t": round(attempt.finished, 4),
        "outcome": attempt.outcome,
        "status": attempt.status,
        "code": attempt.code,
        "error": attempt.error,
        "replayed": attempt.replayed,
        "body": attempt.body,
    }


class HistoryWriter:
    """Appends invoke and complete records as JSON lines, flushed as they happen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] = path.open("w", encoding="utf-8")

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")

    def invoke(self, op: Op, index: int) -> None:
        self._write(_invoke_record(op, index, op.attempts[index]))

    def complete(self, op: Op, index: int) -> None:
        self._write(_complete_record(op, index, op.attempts[index]))
        self._file.flush()

    def note(self, event: str, t: float, **details: Any) -> None:
        """A record that is not an attempt (a fault injected), on the same clock."""
        self._write({"event": event, "t": round(t, 4), **details})
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def write_history(path: Path, ops: Iterable[Op]) -> None:
    """Write a whole history at once (used by tests and for re-checking)."""
    writer = HistoryWriter(path)
    try:
        for op in ops:
            for index in range(len(op.attempts)):
                writer.invoke(op, index)
                writer.complete(op, index)
    finally:
        writer.close()


def load_history(path: Path) -> list[Op]:
    """Rebuild the operations from a history file, in the order they were first invoked."""
    ops: dict[str, Op] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if record["event"] not in ("invoke", "complete"):
            continue
        op_id = record["op"]
        if record["event"] == "invoke":
            if record["attempt"] == 0:
                ops[op_id] = Op(
                    op_id=op_id,
                    client=record["client"],
                    kind=record["kind"],
                    community=record["community"],
                    actor=record["actor"],
                    method=record["method"],
                    path=record["path"],
                    key=record["key"],
                    body=record["body"],
                    expect=record["expect"],
                    params=record.get("params"),
                )
            ops[op_id].attempts.append(
                Attempt(record["phase"], record["request_id"], record["t"], sent_at=record.get("sent_at", 0.0))
            )
        else:
            attempt = ops[op_id].attempts[record["attempt"]]
            attempt.finished = record["t"]
            attempt.status = record["status"]
            attempt.body = record["body"]
            attempt.error = record["error"]
            attempt.replayed = record["replayed"]
    return list(ops.values())
