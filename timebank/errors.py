"""Domain errors and their RFC 9457 problem-details rendering."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import msgspec

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://timebank.example/problems/"


class FieldError(msgspec.Struct, frozen=True, omit_defaults=True):
    """One fault in a request, located by JSON path. An item of a batch also says which (`index`,
    0-based, and `member_id`) and the code of the rule it breaks."""

    field: str
    message: str
    index: int | None = None
    member_id: str | None = None
    code: str | None = None


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """RFC 9457 problem details with a stable `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None
    account_id: str | None = None
    available_minutes: int | None = None
    cap_minutes: int | None = None
    unit_minutes: int | None = None
    max_transaction_minutes: int | None = None
    held_minutes: int | None = None
    transaction_id: str | None = None
    reversed_by: str | None = None
    hold_id: str | None = None
    # invalid_transition: the service request's status when the step was refused, and the request.
    current_status: str | None = None
    service_request_id: str | None = None
    request_id: str | None = None


# Extra members a problem may carry beyond the RFC 9457 ones.
_EXTRA_MEMBERS = frozenset(Problem.__struct_fields__) - {
    "type",
    "title",
    "status",
    "detail",
    "code",
    "errors",
    "request_id",
}


class ErrorCode(msgspec.Struct, frozen=True):
    """One stable error code: the HTTP status it is sent with and its title in each language."""

    status: int
    title: str
    title_zh: str
    # Failures that say nothing lasting about the request: never remembered under an Idempotency-Key,
    # so a retry after the cause is fixed (a token, a role, a body, a pause) proceeds.
    remembered: bool = False


# The stable error codes, the one registry: API.md's list, the OpenAPI document's enums, the
# Chinese titles and the idempotency rule all come from here. A code is added, never renamed.
# `remembered` marks the outcomes of business rules, which a retry with the same key replays.
CODES: dict[str, ErrorCode] = {
    # 400: the request itself is malformed.
    "invalid_request": ErrorCode(400, "Invalid request", "请求无效"),
    "idempotency_key_required": ErrorCode(400, "Idempotency-Key header required", "缺少 Idempotency-Key 请求头"),
    # 401, 403, 404: who may do what.
    "unauthenticated": ErrorCode(401, "Authentication required", "需要登录凭证"),
    "forbidden": ErrorCode(403, "Forbidden", "无权执行此操作"),
    "not_found": ErrorCode(404, "Not found", "未找到"),
    # Protocol refusals by the HTTP layer.
    "method_not_allowed": ErrorCode(405, "Method not allowed", "不支持此请求方法"),
    "request_too_large": ErrorCode(413, "Request body too large", "请求内容过大"),
    "unsupported_media_type": ErrorCode(415, "Unsupported media type", "不支持的内容类型"),
    # 409: conflicts with the current state.
    "community_exists": ErrorCode(409, "Community exists", "社区已存在", remembered=True),
    "member_exists": ErrorCode(409, "Member exists", "成员已存在", remembered=True),
    "relative_exists": ErrorCode(409, "Relative exists", "两人已登记为亲属", remembered=True),  # people
    "service_type_exists": ErrorCode(409, "Service type exists", "服务类型已存在", remembered=True),
    "idempotency_key_reused": ErrorCode(409, "Idempotency-Key reused", "Idempotency-Key 已用于另一请求"),
    "already_reversed": ErrorCode(409, "Already reversed", "该笔交易已被冲正", remembered=True),
    "cannot_reverse_reversal": ErrorCode(409, "Cannot reverse a reversal", "冲正交易不能再次冲正", remembered=True),
    "hold_not_pending": ErrorCode(409, "Hold not pending", "该冻结已处理或已过期", remembered=True),
    "invalid_transition": ErrorCode(409, "Invalid transition", "当前状态下不能执行此步骤", remembered=True),
    "hold_belongs_to_request": ErrorCode(
        409, "Hold belongs to a service request", "该冻结属于一项服务请求", remembered=True
    ),
    "not_yet_logged": ErrorCode(409, "Not yet logged", "尚未写入公开日志"),
    "conflict": ErrorCode(409, "Conflict", "与现有数据冲突"),
    # 422: a ledger or domain rule refused the request.
    "amount_not_multiple_of_unit": ErrorCode(
        422, "Amount not a multiple of the unit", "时长不是计量单位的整数倍", remembered=True
    ),
    "amount_out_of_range": ErrorCode(422, "Amount out of range", "时长超出允许范围", remembered=True),
    "insufficient_balance": ErrorCode(422, "Insufficient balance", "可用时间余额不足", remembered=True),
    "balance_cap_exceeded": ErrorCode(422, "Balance cap exceeded", "超过账户存储上限", remembered=True),
    "not_a_volunteer": ErrorCode(422, "Not a volunteer", "该成员不是志愿者", remembered=True),
    "not_a_member": ErrorCode(422, "Not a member", "不是本社区的成员", remembered=True),  # people
    "duplicate_member": ErrorCode(422, "Member repeated", "同一成员在批次中重复出现", remembered=True),  # people
    "same_account": ErrorCode(422, "Same account", "不能转给同一账户", remembered=True),
    "cross_community_not_allowed": ErrorCode(
        422, "Cross-community transfer not allowed", "不允许跨社区转移时间", remembered=True
    ),
    "capture_exceeds_hold": ErrorCode(422, "Capture exceeds hold", "扣除时长超过冻结时长", remembered=True),
    "service_date_in_future": ErrorCode(422, "Service date in the future", "服务日期不能晚于今天", remembered=True),
    "not_eligible": ErrorCode(422, "Not eligible", "不符合条件", remembered=True),
    "not_a_relative": ErrorCode(422, "Not a relative", "对方不是已登记的亲属", remembered=True),
    "unknown_service_type": ErrorCode(422, "Unknown service type", "没有这个服务类型或已停用", remembered=True),
    "invalid_schedule": ErrorCode(422, "Invalid schedule", "预约时间无效", remembered=True),
    # Rules a schema cannot state: they depend on another field, the clock or the server's state.
    "invalid_date_range": ErrorCode(422, "Invalid date range", "结束时间早于开始时间", remembered=True),
    "invalid_expiry": ErrorCode(422, "Invalid expiry", "到期时间无效", remembered=True),
    "invalid_transfer_target": ErrorCode(422, "Invalid transfer target", "转出对象无效", remembered=True),
    "invalid_cursor": ErrorCode(422, "Invalid cursor", "分页游标无效"),
    "unknown_time_zone": ErrorCode(422, "Unknown time zone", "未知的时区", remembered=True),
    # The public log: a tree size the log cannot prove against (not signed, or before the leaf).
    "invalid_tree_size": ErrorCode(422, "Invalid tree size", "树大小无效"),
    # 429: slow down.
    "too_many_requests": ErrorCode(429, "Too many requests", "请求过于频繁"),
    "too_many_attempts": ErrorCode(429, "Too many attempts", "尝试次数过多，已暂时锁定"),
    # 5xx: the service's side; safe to retry with the same key.
    "internal_error": ErrorCode(500, "Internal error", "服务内部错误"),
    "conflict_retry": ErrorCode(503, "Conflict, retry", "并发冲突，请用同一 Idempotency-Key 重试"),
    "unavailable": ErrorCode(503, "Service unavailable", "服务暂时不可用"),
    # The passbook: no font that writes Chinese is installed (the detail says what to install).
    "pdf_font_missing": ErrorCode(503, "No Chinese font for the PDF", "缺少打印存折所需的中文字体"),
}


def codes_for(status: int) -> list[str]:
    """Every stable code sent with `status`, in registry order."""
    return [code for code, entry in CODES.items() if entry.status == status]


class DomainError(Exception):
    """A request broke a rule; rendered as problem details with a stable code."""

    code: ClassVar[str] = "invalid_request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.extra = extra

    @property
    def status(self) -> int:
        return CODES[self.code].status if self.code in CODES else 400

    def to_problem(self, request_id: str | None = None) -> Problem:
        entry = CODES.get(self.code, CODES["invalid_request"])
        status, title = entry.status, entry.title
        extra = {k: v for k, v in self.extra.items() if k in _EXTRA_MEMBERS}
        errors = self.extra.get("errors")
        problem = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": title,
            "status": status,
            "detail": self.detail,
            "code": self.code,
            "errors": [e if isinstance(e, FieldError) else FieldError(**e) for e in errors] if errors else None,
            "request_id": request_id,
            **{k: (str(v) if isinstance(v, str | uuid.UUID) else v) for k, v in extra.items()},
        }
        return msgspec.convert(problem, Problem, from_attributes=True)


class InvalidRequestError(DomainError):
    """The request is malformed: bad JSON, wrong types, unknown fields, limits exceeded."""

    code = "invalid_request"


class UnauthenticatedError(DomainError):
    """No token, or a token that is not known."""

    code = "unauthenticated"


class ForbiddenError(DomainError):
    """The caller is known but lacks the right for this action."""

    code = "forbidden"


class NotFoundError(DomainError):
    """The resource does not exist or is outside the caller's reach."""

    code = "not_found"


class IdempotencyKeyRequiredError(DomainError):
    """Writes that move hours must carry an Idempotency-Key header."""

    code = "idempotency_key_required"


class TooManyRequestsError(DomainError):
    """Too many failed authentications from this address; retry after `retry_after` seconds."""

    code = "too_many_requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class TooManyAttemptsError(TooManyRequestsError):
    """Too many wrong PINs for this member: PIN changes (and sign-in) are locked for `retry_after` seconds."""

    code = "too_many_attempts"


class ConflictRetryError(DomainError):
    """Concurrent writes kept colliding; the request changed nothing and may be retried as is."""

    code = "conflict_retry"


class UnavailableError(DomainError):
    """The database cannot be reached or the service is shutting down."""

    code = "unavailable"


def problem_from_code(code: str, detail: str, **extra: Any) -> DomainError:
    """Build the DomainError for a stable code (used when translating database errors)."""
    return DomainError(detail, code=code if code in CODES else "invalid_request", **extra)
