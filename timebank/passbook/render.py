"""The passbook as a PDF: A4, large type (its readers are often over 70), Chinese throughout.

Each page repeats whose passbook it is (name, number, community), lists up to ROWS_PER_PAGE entries
with the running balance after each, and carries a QR code with the C2SP tlog-proof of the page's
last entry that is in the public log, against the signed checkpoint whose size and root-hash prefix
are printed beside it. An entry the log does not hold yet is marked ※ and the page says so; a page
with no logged entry has no code and says to print again later.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import segno
from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos
from segno import DataOverflowError

from timebank.passbook.fonts import Font
from timebank.passbook.models import Page, Passbook, PassbookEntry

# Ten rows leave room, on a full page, for the ※ note above the code and a code of QR_MM.
ROWS_PER_PAGE = 10

# Sizes in points (text) and millimetres (layout). 16 pt is about 5.6 mm a character.
TITLE_PT = 26
HEAD_PT = 18
ROW_PT = 16
SUMMARY_PT = 14
NOTE_PT = 14
SMALL_PT = 12
MARGIN = 14.0
ROW_H = 11.5
# A proof at a million leaves is about 1,800 characters: a version 35 code (157 modules) at level M,
# so 72 mm gives modules of 0.46 mm (at level L, when M will not hold it, 141 modules of 0.51 mm),
# which phone cameras read from paper; 62 mm (0.39 mm) often needed several tries.
QR_MM = 72.0
# Columns: 日期, 摘要, 存入, 支出, 余额 (widths in mm, 182 in all).
COLUMNS = (("日期", 43.0), ("摘要", 41.0), ("存入", 30.0), ("支出", 30.0), ("余额", 38.0))
NOT_LOGGED = "※"

KIND_NAMES = {
    "credit": "服务存入",
    "redemption": "兑换服务",
    "transfer": "转账",
    "donation": "捐赠",
    "pool_grant": "互助池拨付",
    "reversal": "冲正",
    "hold_capture": "服务支付",
}


def chinese_day(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def hours(minutes: int) -> str:
    """Minutes as hours and minutes the way people say them: 1小时30分, 2小时, 45分, 0小时."""
    sign = "-" if minutes < 0 else ""
    h, m = divmod(abs(minutes), 60)
    if h and m:
        return f"{sign}{h}小时{m}分"
    if m:
        return f"{sign}{m}分"
    return f"{sign}{h}小时"


def _logged(entry: PassbookEntry, passbook: Passbook) -> bool:
    cp = passbook.checkpoint
    return cp is not None and entry.leaf_index is not None and entry.leaf_index < cp.tree_size


class _Document(FPDF):
    def __init__(self, font: Font) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(auto=False)
        self.add_font("cjk", fname=font.path, collection_font_number=font.index)
        self.set_lang("zh-CN")
        self.set_text_color(0, 0, 0)
        self.set_draw_color(0, 0, 0)
        self.c_margin = 1.5

    def text_cell(
        self, width: float, height: float, text: str, size: float, align: Align = Align.L, border: Literal[0, 1] = 0
    ) -> None:
        """One line of text in a cell; shrunk (never cut) if it would not fit its width."""
        self.set_font("cjk", size=size)
        while size > 8 and self.get_string_width(text) > width - 2:
            size -= 1
            self.set_font("cjk", size=size)
        self.cell(width, height, text, border=border, align=align, new_x=XPos.RIGHT, new_y=YPos.TOP)

    def lines_of(self, text: str, width: float, size: float, most: int) -> list[str]:
        """The text broken into at most `most` lines of the width (by character: Chinese has no spaces),
        the last ending in … when the text is longer."""
        self.set_font("cjk", size=size)
        lines: list[str] = []
        rest = text
        while rest and len(lines) < most:
            if len(lines) == most - 1:
                lines.append(self.fitted(rest, width, size))
                break
            cut = len(rest)
            while cut > 1 and self.get_string_width(rest[:cut]) > width - 2:
                cut -= 1
            lines.append(rest[:cut])
            rest = rest[cut:]
        return lines

    def summary_cell(self, width: float, text: str) -> None:
        """The entry's summary: one line in the row's size, or two smaller lines rather than cut short."""
        self.set_font("cjk", size=ROW_PT)
        if self.get_string_width(text) <= width - 2:
            self.text_cell(width, ROW_H, text, ROW_PT, border=1)
            return
        lines = self.lines_of(text, width, SUMMARY_PT, 2)
        if len(lines) == 1:
            self.text_cell(width, ROW_H, lines[0], SUMMARY_PT, border=1)
            return
        x, y = self.get_x(), self.get_y()
        self.rect(x, y, width, ROW_H)
        for number, line in enumerate(lines):
            self.set_xy(x, y + 0.6 + number * ROW_H / 2.2)
            self.cell(width, ROW_H / 2.2, line, new_x=XPos.RIGHT, new_y=YPos.TOP)
        self.set_xy(x + width, y)

    def fitted(self, text: str, width: float, size: float) -> str:
        """The text cut to fit the width at this size, ending in … when cut."""
        self.set_font("cjk", size=size)
        if self.get_string_width(text) <= width - 2:
            return text
        while text and self.get_string_width(text + "…") > width - 2:
            text = text[:-1]
        return text + "…"


def _header(pdf: _Document, passbook: Passbook) -> None:
    pdf.set_xy(MARGIN, MARGIN)
    pdf.text_cell(182, 12, "时间银行存折", TITLE_PT, Align.C)
    pdf.ln(14)
    pdf.text_cell(100, 10, f"姓名：{passbook.display_name}", HEAD_PT)
    pdf.text_cell(82, 10, f"编号：{passbook.member_no}", HEAD_PT)
    pdf.ln(10)
    pdf.text_cell(182, 10, f"社区：{passbook.community_name}", HEAD_PT)
    pdf.ln(10)
    first = chinese_day(passbook.first_day) if passbook.first_day else "开户起"
    last = chinese_day(passbook.last_day) if passbook.last_day else chinese_day(passbook.printed_at.date())
    period = f"期间：{first} 至 {last}"
    if passbook.first_day:
        period += f"　承前余额：{hours(passbook.opening_minutes)}"
    pdf.text_cell(182, 9, period, NOTE_PT + 2)
    pdf.ln(11)


def _table(pdf: _Document, passbook: Passbook, page: Page) -> None:
    pdf.set_line_width(0.4)
    pdf.set_fill_color(230, 230, 230)
    for title, width in COLUMNS:
        pdf.set_font("cjk", size=ROW_PT)
        pdf.cell(width, ROW_H, title, border=1, align=Align.C, fill=True, new_x=XPos.RIGHT, new_y=YPos.TOP)
    pdf.ln(ROW_H)
    pdf.set_line_width(0.2)
    for row, entry in enumerate(page.entries):
        # Every other row lightly shaded, so that an eye following a line does not slip to the next.
        if row % 2:
            pdf.set_fill_color(240, 240, 240)
            pdf.rect(MARGIN, pdf.get_y(), 182, ROW_H, style="F")
        summary = entry.description.strip() or KIND_NAMES.get(entry.kind, entry.kind)
        if not _logged(entry, passbook):
            summary = NOT_LOGGED + summary
        widths = [width for _, width in COLUMNS]
        pdf.text_cell(widths[0], ROW_H, chinese_day(entry.day), ROW_PT, border=1)
        pdf.summary_cell(widths[1], summary)
        pdf.text_cell(widths[2], ROW_H, hours(entry.minutes) if entry.minutes > 0 else "", ROW_PT, Align.R, border=1)
        pdf.text_cell(widths[3], ROW_H, hours(-entry.minutes) if entry.minutes < 0 else "", ROW_PT, Align.R, border=1)
        pdf.text_cell(widths[4], ROW_H, hours(entry.balance_after_minutes), ROW_PT, Align.R, border=1)
        pdf.ln(ROW_H)
    if not page.entries:
        pdf.text_cell(182, ROW_H, "这段期间没有记录。", ROW_PT, Align.C, border=1)
        pdf.ln(ROW_H)
    if any(not _logged(entry, passbook) for entry in page.entries):
        pdf.ln(2)
        pdf.text_cell(182, 8, f"{NOT_LOGGED} 尚待记入公开日志，稍后重新打印即可核验。", NOTE_PT)
        pdf.ln(8)


def qr_for(page: Page) -> tuple[segno.QRCode, bool] | None:
    """The page's QR code, and whether it carries the leaf (else the proof alone, for a long entry)."""
    if page.proof is None or page.short_proof is None:
        return None
    # The leaf rides in the code whenever any level holds it: lower error correction before dropping it.
    tries = (
        (page.proof, True, "m"),
        (page.proof, True, "l"),
        (page.short_proof, False, "m"),
        (page.short_proof, False, "l"),
    )
    for text, whole, error in tries:
        try:
            return segno.make(text, error=error, micro=False, boost_error=False), whole
        except DataOverflowError:
            continue
    return None


def _draw_qr(pdf: _Document, code: segno.QRCode, x: float, y: float, size: float) -> None:
    """The code as filled rectangles (sharp at any zoom or print), one per run of dark modules."""
    matrix = code.matrix
    count = len(matrix)
    module = size / count
    pdf.set_fill_color(0, 0, 0)
    for row, cells in enumerate(matrix):
        col = 0
        while col < count:
            if cells[col]:
                start = col
                while col < count and cells[col]:
                    col += 1
                pdf.rect(x + start * module, y + row * module, (col - start) * module, module + 0.01, style="F")
            else:
                col += 1


def _footer(pdf: _Document, passbook: Passbook, page: Page, number: int, total: int) -> None:
    top = 297 - MARGIN - QR_MM - 10
    pdf.set_line_width(0.3)
    pdf.line(MARGIN, top - 3, 210 - MARGIN, top - 3)
    found = qr_for(page)
    text_x = MARGIN + QR_MM + 6
    width = 210 - MARGIN - text_x
    pdf.set_xy(text_x, top)
    if found is None or passbook.checkpoint is None or page.proof_entry is None:
        pdf.set_xy(MARGIN, top + 2)
        pdf.text_cell(182, 10, "本页记录尚待记入公开日志，暂无核验码。", NOTE_PT + 2)
        pdf.set_xy(MARGIN, top + 12)
        pdf.text_cell(182, 10, "请过几分钟后重新打印本存折。", NOTE_PT + 2)
    else:
        code, whole = found
        _draw_qr(pdf, code, MARGIN, top, QR_MM)
        entry = page.proof_entry
        lines = [
            ("公开日志核验码", NOTE_PT + 2),
            (f"证明本页 {chinese_day(entry.day)} 的记录", NOTE_PT),
            (f"（余额 {hours(entry.balance_after_minutes)}）已记入公开日志。", NOTE_PT),
            (f"检查点：共 {passbook.checkpoint.tree_size} 条", NOTE_PT),
            (f"根哈希：{passbook.checkpoint.root_hash.hex()[:16]}", NOTE_PT),
            ("用 timebank proof check 核验", SMALL_PT),
        ]
        if not whole:
            lines.append(("核验时还需这笔交易的数据", SMALL_PT))
        for text, size in lines:
            pdf.set_x(text_x)
            pdf.text_cell(width, 9, text, size)
            pdf.ln(9)
    pdf.set_xy(MARGIN, 297 - MARGIN - 8)
    printed = chinese_day(passbook.printed_at.date())
    pdf.text_cell(182, 8, f"第 {number} 页　共 {total} 页　　打印日期：{printed}", NOTE_PT, Align.C)


def render_passbook(passbook: Passbook, font: Font) -> bytes:
    """The PDF's bytes; the font is embedded as a subset of the glyphs the passbook uses."""
    pdf = _Document(font)
    pdf.set_title(f"时间银行存折 {passbook.display_name} {passbook.member_no}")
    pdf.set_creator("timebank")
    total = len(passbook.pages)
    for number, page in enumerate(passbook.pages, start=1):
        pdf.add_page()
        _header(pdf, passbook)
        _table(pdf, passbook, page)
        _footer(pdf, passbook, page, number, total)
    return bytes(pdf.output())
