"""Audit events as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec


class AuditEvent(msgspec.Struct, frozen=True):
    id: uuid.UUID
    at: datetime
    actor: str
    # A member's display name (as it is now), `admin`, `auditor`, `system`, or `anonymous`.
    actor_name: str
    on_behalf_of: uuid.UUID | None
    action: str
    subject_id: uuid.UUID | None
    subject_type: str | None
    community: str | None
    request_id: str
    details: dict[str, Any]


class AuditEventPage(msgspec.Struct, frozen=True):
    items: list[AuditEvent]
    next_cursor: str | None
