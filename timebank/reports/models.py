"""The monthly report as the API shows it (API.md "Reports")."""

from __future__ import annotations

from datetime import datetime

import msgspec


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    """A month's figures. Minutes are whole minutes of transactions created in the month.

    earned: credited to volunteers, or paid to a provider for a service; redeemed: spent by members
    on services; gifted: given member to member; donated: given to the pool; granted: given from the
    pool; reversed: the amounts of the month's reversals (the figures above are not reduced by them);
    active_volunteers: members who earned minutes; services_completed, people_served and
    average_rating (two places, null when none was rated): the service requests completed in the
    month and the members they served; outstanding: per grid, its members' balances at the month's
    end, in the totals minus the issuance balance at the month's end. docs/reports.md says more.
    """

    earned_minutes: int
    redeemed_minutes: int
    gifted_minutes: int
    donated_minutes: int
    granted_minutes: int
    reversed_minutes: int
    active_volunteers: int
    people_served: int
    services_completed: int
    average_rating: float | None
    outstanding_minutes: int


class GridFigures(Figures, frozen=True, kw_only=True):
    """One grid's figures. `community` names the grid's community (grids are named per community)."""

    grid: str | None
    community: str


class ServiceTypeFigures(msgspec.Struct, frozen=True):
    """One service type's completed requests of the month: how many, the minutes moved, the mean rating."""

    service_type: str
    # The service type's name in the community asked for (助餐).
    name: str
    services_completed: int
    minutes: int
    average_rating: float | None


class MonthlyReport(msgspec.Struct, frozen=True, kw_only=True):
    """A community's month: `from` and `to` bound it in the community's time zone (`to` excluded)."""

    community: str
    month: str
    start: datetime = msgspec.field(name="from")
    end: datetime = msgspec.field(name="to")
    include_children: bool
    # The communities summed: this one, and with include_children every community below it.
    communities: list[str]
    totals: Figures
    by_grid: list[GridFigures]
    by_service_type: list[ServiceTypeFigures]
