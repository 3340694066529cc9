"""What a check proves wrong, and how a ledger row that no operation acknowledged is named."""

from __future__ import annotations

from dataclasses import dataclass

from reliability.history import FAILED, OK, Op, op_id_of


@dataclass(frozen=True)
class Violation:
    kind: str
    message: str
    op_id: str | None = None

    def __str__(self) -> str:
        where = f" [op {self.op_id}]" if self.op_id else ""
        return f"{self.kind}{where}: {self.message}"


def unclaimed(what: str, object_id: str, request_id: str | None, ops_by_id: dict[str, Op]) -> Violation:
    """A ledger row no operation acknowledged, named after the operation whose request wrote it."""
    op_id = op_id_of(request_id)
    op = ops_by_id.get(op_id) if op_id else None
    if op is None:
        return Violation("unclaimed", f"{what} {object_id} (request {request_id}) belongs to no operation")
    if op.final == FAILED:
        code = op.final_attempt.code if op.final_attempt else None
        return Violation("failed_left_trace", f"{op.kind} failed ({code}) but wrote {what} {object_id}", op.op_id)
    if op.final == OK:
        body = op.final_body
        answered = body.get("id") if isinstance(body, dict) else None
        return Violation("duplicate", f"{op.kind} acknowledged {answered} but also wrote {what} {object_id}", op.op_id)
    return Violation("unresolved", f"{op.kind} never settled but wrote {what} {object_id}", op.op_id)
