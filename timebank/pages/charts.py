"""Charts drawn on the server as inline SVG, readable at any width and in either language.

Horizontal positions are percentages of the chart's width and vertical ones pixels, so the chart
stretches to the page while its words keep their size (18 px) on a phone and on a desk. Each chart
has a title and a description for screen readers; the numbers themselves are in a table beside it.
Earned and redeemed differ by fill (solid and hatched), not by colour alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

from timebank.pages.i18n import gettext

FONT_PX = 20
EARNED = "#0b4f9c"  # the pages' accent, 8.6:1 on white
REDEEMED = "#a34700"  # dark orange, 5.9:1 on white, and hatched
INK = "#111"
RULE = "#767676"


@dataclass(frozen=True)
class Bar:
    """One group of the chart: its label (a name or data, shown as is) and its two amounts in minutes."""

    label: str
    earned: int
    redeemed: int
    label_is_data: bool = True


def hours(minutes: int) -> str:
    """Minutes as hours for a chart's scale: 750 -> "12.5" (one decimal when not whole)."""
    value = minutes / 60
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def _hatch(id_prefix: str) -> str:
    return (
        f'<defs><pattern id="{id_prefix}-hatch" patternUnits="userSpaceOnUse" width="8" height="8"'
        f' patternTransform="rotate(45)"><rect width="8" height="8" fill="#fff"/>'
        f'<rect width="4" height="8" fill="{REDEEMED}"/></pattern></defs>'
    )


def _text(
    x: str, y: float, content: str, *, anchor: str = "start", dx: int = 0, data: bool = False, css: str = ""
) -> str:
    no = ' translate="no"' if data else ""
    shift = f' dx="{dx}"' if dx else ""
    kind = f' class="{css}"' if css else ""
    return (
        f'<text x="{x}" y="{y:.0f}"{shift}{kind} font-size="{FONT_PX}" fill="{INK}" text-anchor="{anchor}"{no}>'
        f"{escape(content)}</text>"
    )


def _open(id_prefix: str, height: float, title: str, description: str) -> str:
    return (
        f'<svg class="chart" width="100%" height="{height:.0f}" role="img"'
        f' aria-labelledby="{id_prefix}-title {id_prefix}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{id_prefix}-title">{escape(title)}</title><desc id="{id_prefix}-desc">{escape(description)}</desc>'
        + _hatch(id_prefix)
    )


def _amount(minutes: int) -> str:
    return gettext("%(hours)s h") % {"hours": hours(minutes)}


def grid_bars(id_prefix: str, title: str, description: str, groups: list[Bar]) -> Markup:
    """Earned and redeemed per group as horizontal bars: the group's label above its two bars, each
    bar's amount in hours after it. The longest bar takes 65 % of the width, leaving room for the amount."""
    largest = max([g.earned for g in groups] + [g.redeemed for g in groups] + [1])
    bar_px, gap_px, label_px = 24, 4, 28
    parts: list[str] = []
    y = 0.0
    for group in groups:
        y += label_px
        parts.append(_text("0", y - 6, group.label, data=group.label_is_data))
        for minutes, fill in ((group.earned, EARNED), (group.redeemed, f"url(#{id_prefix}-hatch)")):
            width = 65 * minutes / largest
            if minutes:
                parts.append(
                    f'<rect x="0" y="{y:.0f}" width="{width:.2f}%" height="{bar_px}" fill="{fill}"'
                    f' stroke="{REDEEMED if fill != EARNED else EARNED}" stroke-width="1"/>'
                )
            parts.append(_text(f"{width:.2f}%", y + bar_px - 5, _amount(minutes), dx=8))
            y += bar_px + gap_px
        y += 14
    # Every word and name in it went through escape() (_text, _open); the rest is numbers.
    return Markup(_open(id_prefix, y + 4, title, description) + "".join(parts) + "</svg>")  # noqa: S704


def _step(largest_hours: float) -> float:
    """A round step for the scale (1, 2 or 5 times a power of ten) giving at most four lines."""
    if largest_hours <= 0:
        return 1
    power = 10 ** math.floor(math.log10(largest_hours / 4)) if largest_hours >= 4 else 1
    for multiple in (1, 2, 5, 10):
        if largest_hours / (multiple * power) <= 4:
            return float(multiple * power)
    return float(10 * power)


def trend_columns(
    id_prefix: str, title: str, description: str, months: list[tuple[int, int, Bar]], unit: str
) -> Markup:
    """Earned and redeemed of each month as pairs of columns: the month's number under each pair, the
    year under each January, a scale in hours on the left (on a narrow screen every other month is
    named). `months` holds (year, month, amounts)."""
    plot_top, plot_px, left = 36.0, 200.0, 14.0
    largest = max([b.earned for _, _, b in months] + [b.redeemed for _, _, b in months] + [0]) / 60
    step = _step(largest)
    top_value = step * max(1, math.ceil(largest / step))
    bottom = plot_top + plot_px
    parts = [_text("0", 20, unit)]
    value = 0.0
    while value <= top_value + 1e-9:
        y = bottom - plot_px * value / top_value
        parts.append(f'<line x1="{left}%" x2="100%" y1="{y:.0f}" y2="{y:.0f}" stroke="{RULE}" stroke-width="1"/>')
        parts.append(_text(f"{left - 1}%", y + 6, f"{value:g}", anchor="end"))
        value += step
    slot = (100 - left) / max(1, len(months))
    for index, (year, month, bar) in enumerate(months):
        start = left + slot * index
        for offset, minutes, fill in ((0.14, bar.earned, EARNED), (0.5, bar.redeemed, f"url(#{id_prefix}-hatch)")):
            height = plot_px * minutes / 60 / top_value
            if minutes:
                parts.append(
                    f'<rect x="{start + slot * offset:.2f}%" y="{bottom - height:.1f}" width="{slot * 0.36:.2f}%"'
                    f' height="{height:.1f}" fill="{fill}" stroke="{EARNED if fill == EARNED else REDEEMED}"'
                    ' stroke-width="1"/>'
                )
        # On a phone every other month is named (the newest always): twelve numbers would run together.
        minor = "minor" if (len(months) - 1 - index) % 2 else ""
        parts.append(_text(f"{start + slot / 2:.2f}%", bottom + 24, str(month), anchor="middle", css=minor))
        if month == 1:
            parts.append(_text(f"{start + slot * 0.1:.2f}%", bottom + 48, str(year)))
    return Markup(_open(id_prefix, bottom + 56, title, description) + "".join(parts) + "</svg>")  # noqa: S704
