"""The large result after a form acted ("已转给 王芳 2 小时"), with names kept out of the catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, Response
from litestar.datastructures import State
from markupsafe import Markup, escape

from timebank.pages.common import render
from timebank.pages.i18n import gettext
from timebank.pages.member import Signed
from timebank.pages.templating import data
from timebank.pages.words import day_in_words


def sentence(message: str, **values: str | Markup) -> Markup:
    """A catalog sentence with names and amounts put in (escaped, marked translate="no")."""
    return escape(gettext(message)) % {k: v if isinstance(v, Markup) else data(v) for k, v in values.items()}


def moment(at: datetime, time_zone: str) -> Markup:
    """A day and time as moment_in_words says them, each part unbroken but free to wrap between."""
    local = at.astimezone(ZoneInfo(time_zone))
    return sentence("%(day)s at %(time)s", day=day_in_words(local.date()), time=local.strftime("%H:%M"))


def done(
    request: Request[Any, Any, State],
    who: Signed,
    heading: str,
    result: Markup,
    next_href: str,
    next_label: str,
    also: str | None = None,
) -> Response[Any]:
    return render(
        request, "done.html", heading=gettext(heading), result=result, next_href=next_href,
        next_label=gettext(next_label), also=gettext(also) if also else None, **who.page(),
    )  # fmt: skip
