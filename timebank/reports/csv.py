"""The monthly report as CSV that Excel opens as it is: UTF-8 with a byte order mark, CRLF lines.

One row per grid, then a total row. The columns, in order (English names when the caller's
Accept-Language is not Chinese, Chinese names when it is, as problems are):

    community / 社区, grid / 网格, month / 月份, then one column per figure of the JSON report
    (earned_minutes / 获得时长（分钟）, ... as COLUMNS below).

The total row says `total` / `合计` in the grid column and the report's community in the community
column; a grid of members without one is an empty cell. average_rating has two decimals, empty when
no service was rated. A cell that Excel would read as a formula (starting with =, +, -, @, a tab or a
carriage return) is written with a leading apostrophe, so a grid's name can never run as a formula.
"""

from __future__ import annotations

import csv
import io

from timebank.i18n import Language
from timebank.reports.models import Figures, MonthlyReport

BOM = "\ufeff"
MEDIA_TYPE = "text/csv"

# Figure field -> (English header, Chinese header).
COLUMNS: dict[str, tuple[str, str]] = {
    "earned_minutes": ("earned_minutes", "获得时长（分钟）"),
    "redeemed_minutes": ("redeemed_minutes", "兑换时长（分钟）"),
    "gifted_minutes": ("gifted_minutes", "赠与时长（分钟）"),
    "donated_minutes": ("donated_minutes", "捐赠时长（分钟）"),
    "granted_minutes": ("granted_minutes", "资助发放时长（分钟）"),
    "reversed_minutes": ("reversed_minutes", "冲正时长（分钟）"),
    "active_volunteers": ("active_volunteers", "活跃志愿者（人）"),
    "people_served": ("people_served", "服务对象（人）"),
    "services_completed": ("services_completed", "完成服务（次）"),
    "average_rating": ("average_rating", "平均评分"),
    "outstanding_minutes": ("outstanding_minutes", "未兑付时长（分钟）"),
}
LEADING: dict[str, tuple[str, str]] = {
    "community": ("community", "社区"),
    "grid": ("grid", "网格"),
    "month": ("month", "月份"),
}
TOTAL = ("total", "合计")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str | None) -> str:
    text = value or ""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _figures(figures: Figures) -> list[str]:
    cells = []
    for name in COLUMNS:
        value = getattr(figures, name)
        if name == "average_rating":
            cells.append("" if value is None else f"{value:.2f}")
        else:
            cells.append(str(value))
    return cells


def filename(report: MonthlyReport) -> str:
    return f"report-{report.community}-{report.month}.csv"


def render(report: MonthlyReport, language: Language) -> bytes:
    """The report's bytes: BOM, a header row, a row per grid, the total row."""
    chinese = 1 if language == "zh" else 0
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([names[chinese] for names in (*LEADING.values(), *COLUMNS.values())])
    for row in report.by_grid:
        writer.writerow([_text(row.community), _text(row.grid), report.month, *_figures(row)])
    writer.writerow([_text(report.community), TOTAL[chinese], report.month, *_figures(report.totals)])
    return (BOM + out.getvalue()).encode("utf-8")


# How the OpenAPI document declares the CSV answer (timebank.http.openapi.ALTERNATE_CONTENT).
OPENAPI_CONTENT: dict[str, object] = {
    "schema": {
        "type": "string",
        "description": "UTF-8 with a byte order mark, CRLF lines: a header row, a row per grid, a total row."
        " Columns: community, grid, month, then the figures in the order of the JSON report (Chinese"
        " names with Accept-Language: zh-CN).",
    },
    "example": "\ufeffcommunity,grid,month,earned_minutes,redeemed_minutes,gifted_minutes,donated_minutes,"
    "granted_minutes,reversed_minutes,active_volunteers,people_served,services_completed,average_rating,"
    "outstanding_minutes\r\nzixuan,1,2026-11,600,120,30,60,60,0,3,2,2,4.50,1200\r\n"
    "zixuan,total,2026-11,600,120,30,60,60,0,3,2,2,4.50,1260\r\n",
}
