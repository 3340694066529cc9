"""Service types and service requests as the API shows them, and the write requests."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from timebank.http.types import AwareDatetime, Description, Minutes, Name, Reason, Request

ServiceRequestStatus = Literal["open", "assigned", "in_progress", "reported", "disputed", "completed", "cancelled"]
Funding = Literal["own", "community", "pool"]

ServiceTypeCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
DefaultMinutes = Annotated[int, msgspec.Meta(ge=1, le=1440)]
Rating = Annotated[int, msgspec.Meta(ge=1, le=5)]


class ServiceType(msgspec.Struct, frozen=True):
    code: str
    name: str
    default_minutes: int
    # Retired types (false) keep their past requests but take no new ones.
    active: bool


class ServiceTypePage(msgspec.Struct, frozen=True):
    """A community's service types (a handful: one page, next_cursor always null)."""

    items: list[ServiceType]
    next_cursor: str | None


class ServiceTypeCreate(Request, frozen=True):
    code: ServiceTypeCode
    name: Name
    default_minutes: DefaultMinutes


class ServiceTypeReplace(Request, frozen=True):
    """Every field (PUT): rename, change the usual minutes, retire (active false) or bring back."""

    name: Name
    default_minutes: DefaultMinutes
    active: bool


class ServiceRequestCreate(Request, frozen=True):
    member_id: uuid.UUID
    service_type: ServiceTypeCode
    scheduled_at: AwareDatetime
    funding: Funding
    # Left out: the service type's default_minutes.
    minutes: Minutes | None = None
    description: Description = ""


class ServiceRequestAssign(Request, frozen=True):
    """`{}` (or no body): a volunteer claims the request for itself; a coordinator names the provider."""

    provider_member_id: uuid.UUID | None = None


class ServiceRequestCheckIn(Request, frozen=True):
    """Checking in takes no fields; an empty object or no body at all."""


class ServiceRequestReport(Request, frozen=True):
    minutes: Minutes


class ServiceRequestConfirm(Request, frozen=True):
    rating: Rating
    comment: Description | None = None
    # A coordinator only (e.g. settling a dispute): the minutes that move instead of those reported.
    minutes: Minutes | None = None


class ServiceRequestReason(Request, frozen=True):
    reason: Reason


class ServiceRequest(msgspec.Struct, frozen=True):
    id: uuid.UUID
    community: str
    member_id: uuid.UUID
    # The person served: name and grid only (never a phone or birth date), as they are now.
    member_name: str
    grid: str | None
    service_type: str
    minutes: int
    scheduled_at: datetime
    funding: Funding
    description: str
    status: ServiceRequestStatus
    hold_id: uuid.UUID | None
    provider_member_id: uuid.UUID | None
    provider_name: str | None
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    reported_minutes: int | None
    rating: int | None
    comment: str | None
    transaction_id: uuid.UUID | None
    cancel_reason: str | None
    dispute_reason: str | None
    created_at: datetime
    updated_at: datetime


class ServiceRequestPage(msgspec.Struct, frozen=True):
    items: list[ServiceRequest]
    next_cursor: str | None
