"""Amounts and dates as people read them: "12 小时 30 分钟", "2026年12月7日"."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from timebank.pages.i18n import current_language, gettext, ngettext


def minutes_in_words(minutes: int) -> str:
    """Whole hours and minutes, signed: 750 -> "12 小时 30 分钟" / "12 hours 30 minutes"."""
    sign = "−" if minutes < 0 else ""
    hours, rest = divmod(abs(minutes), 60)
    parts = []
    if hours:
        parts.append(ngettext("%(num)d hour", "%(num)d hours", hours) % {"num": hours})
    if rest or not hours:
        parts.append(ngettext("%(num)d minute", "%(num)d minutes", rest) % {"num": rest})
    return sign + " ".join(parts)


def day_in_words(day: date) -> str:
    if current_language.get() == "zh":
        return f"{day.year}年{day.month}月{day.day}日"
    return day.strftime("%-d %B %Y")


def moment_in_words(moment: datetime, time_zone: str) -> str:
    local = moment.astimezone(ZoneInfo(time_zone))
    return gettext("%(day)s at %(time)s") % {"day": day_in_words(local.date()), "time": local.strftime("%H:%M")}
