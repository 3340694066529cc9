"""How the passbook writes amounts and dates, and what its code holds when a leaf is too long for one."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from pathlib import Path

import pytest

from tests.passbook.tools import pdf_text, qr_codes, require_tools
from timebank.log.note import TlogProof
from timebank.passbook.models import Checkpoint, Page, Passbook, PassbookEntry
from timebank.passbook.render import chinese_day, hours, qr_for, render_passbook


@pytest.mark.parametrize(
    ("minutes", "written"),
    [(0, "0小时"), (45, "45分"), (60, "1小时"), (90, "1小时30分"), (90000, "1500小时"), (-75, "-1小时15分")],
)
def test_hours_and_minutes_as_people_say_them(minutes: int, written: str) -> None:
    assert hours(minutes) == written


def test_dates_are_written_the_chinese_way() -> None:
    assert chinese_day(date(2026, 1, 5)) == "2026年1月5日"
    assert chinese_day(date(2026, 12, 31)) == "2026年12月31日"


def _page(extra: bytes) -> tuple[Page, Checkpoint]:
    checkpoint = Checkpoint(40, bytes(range(32)), "timebank.test/log\n40\nAAAA\n\n— timebank.test/log AAAA\n")
    entry = PassbookEntry(uuid.uuid4(), "credit", 60, 60, "助餐", None, date(2026, 12, 1), 39)
    path = [bytes([i]) * 32 for i in range(6)]
    whole = TlogProof(39, path, checkpoint.note, extra).encode()
    short = TlogProof(39, path, checkpoint.note).encode()
    return Page([entry], entry, whole, short), checkpoint


def test_a_leaf_too_long_for_a_code_leaves_the_proof_alone_and_the_page_says_so(tmp_path: Path) -> None:
    font = require_tools()
    page, checkpoint = _page(b"x" * 4000)  # a transaction with very many postings
    found = qr_for(page)
    assert found is not None
    _, whole = found
    assert not whole
    passbook = Passbook(
        uuid.uuid4(), "周彦芳", "000007", "阳光社区", None, None, 0, datetime(2026, 12, 7, 9), checkpoint, [page]
    )
    pdf = tmp_path / "long.pdf"
    pdf.write_bytes(render_passbook(passbook, font))
    assert "核验时还需这笔交易的数据" in pdf_text(pdf)
    assert qr_codes(pdf) == [page.short_proof]

    usual, _ = _page(b"y" * 300)
    found = qr_for(usual)
    assert found is not None
    assert found[1]  # a usual leaf rides in the code
