"""The paper passbook (存折): a PDF in Chinese whose text holds the member and its running balances, and
whose every page carries a QR code that a real decoder reads from the rendered picture and that
`timebank proof check` accepts offline with the verifier key alone."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.client import Api, Member
from tests.eventually import eventually
from tests.log.conftest import LoggedService, run_timebank
from tests.passbook.tools import pdf_text, qr_codes, require_tools
from tests.sql.support import Ledger, app_connect
from timebank.log.note import TlogProof, open_checkpoint
from timebank.passbook.render import ROWS_PER_PAGE, chinese_day, hours

pytestmark = pytest.mark.slow  # started first (tests/conftest.py), so the workers finish together


async def _statement(api: Api, member: Member) -> list[dict[str, Any]]:
    response = await api.get(f"/v1/accounts/{member.account_id}/entries", member.token, limit=500)
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))


async def _passbook(api: Api, member_id: str, token: str, **params: Any) -> Any:
    return await api.get(f"/v1/members/{member_id}/passbook.pdf", token, **params)


async def _all_logged(api: Api, member: Member) -> None:
    """Until the last entry's proof is served: every entry is in a signed checkpoint."""
    last = (await _statement(api, member))[-1]

    async def proof() -> Any:
        return await api.get(f"/v1/transactions/{last['transaction_id']}/proof", member.token)

    await eventually(proof, lambda r: r.status_code == 200, what="the last entry logged")


async def test_the_passbook_prints_every_entry_and_each_page_proves_its_last(
    logged: LoggedService, tmp_path: Path
) -> None:
    require_tools()
    api = logged.api
    community = await api.community()
    elder = await api.member(community, "resident", "volunteer", name="王秀兰")
    other = await api.member(community, "volunteer", name="李建国")
    # Two pages and a bit: credits, and transfers out (hours and minutes, some negative moves).
    for i in range(ROWS_PER_PAGE + 3):
        if i % 4 == 3:
            response = await api.post(
                "/v1/transfers", elder.token, {"from_member_id": elder.id, "to_member_id": other.id, "minutes": 45}
            )
        else:
            response = await api.credit(elder, 90 if i % 2 else 60)
        assert response.status_code == 201, response.text
    await _all_logged(api, elder)

    response = await _passbook(api, elder.id, elder.token)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "passbook.pdf"
    pdf.write_bytes(response.content)

    member = (await api.get(f"/v1/members/{elder.id}", elder.token)).json()
    text = pdf_text(pdf)
    flat = text.replace(" ", "")
    assert "王秀兰" in text
    assert member["member_no"] in text
    assert f"社区 {community.slug}" in text
    # Every entry of the statement, in order, with its running balance, in hours and minutes.
    statement = await _statement(api, elder)
    assert len(statement) == ROWS_PER_PAGE + 3
    rows = [line for line in text.splitlines() if line.strip().startswith("20") and "年" in line]
    assert len(rows) == len(statement)
    for row, entry in zip(rows, statement, strict=True):
        assert row.split()[-1] == hours(entry["balance_after_minutes"]), (row, entry)
        assert hours(abs(entry["minutes"])) in row
    # Dates in the community's time zone (Asia/Shanghai unless its policy says otherwise).
    booked = datetime.fromisoformat(statement[0]["created_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert rows[0].split()[0] == chinese_day(booked.date())
    assert "第1页" in flat
    assert "共2页" in flat
    assert "※" not in text  # everything was logged

    # Each page's QR code, read from the rendered picture, proves the page's last entry.
    codes = qr_codes(pdf)
    assert len(codes) == 2
    last_of_page = [statement[ROWS_PER_PAGE - 1], statement[-1]]
    for number, (code, entry) in enumerate(zip(codes, last_of_page, strict=True), start=1):
        assert code.startswith("c2sp.org/tlog-proof@v1\n"), code[:80]
        proof = TlogProof.parse(code)
        checkpoint = open_checkpoint(proof.checkpoint, logged.verifier)
        assert f"共{checkpoint.size}条" in flat
        assert checkpoint.root.hex()[:16] in text
        proof_file = tmp_path / f"page-{number}.tlog-proof"
        proof_file.write_text(code)
        status, out, err = await run_timebank("proof", "check", str(proof_file), "--key", logged.verifier.encode())
        assert status == 0, out + err
        assert out.startswith(f"OK: transaction {entry['transaction_id']} is leaf {proof.index}"), out


async def test_the_command_marks_entries_not_yet_logged_and_proves_the_last_logged(
    fresh_db: str, tmp_path: Path
) -> None:
    """`timebank passbook` on a database: three entries sealed and signed, two more not yet; the page's
    code proves the third (the last logged), the two later ones are marked ※ and the page says so."""
    require_tools()
    key = tmp_path / "log.key"
    status, out, _ = await run_timebank("log", "keygen", "--name", "timebank.example/log", "--out", str(key))
    assert status == 0
    verifier = out.strip().splitlines()[-1]
    app = await app_connect(fresh_db)
    try:
        ledger = await Ledger.with_new_admin(app, fresh_db)
        elder = await ledger.member(await ledger.community(), "volunteer", "resident")
        credits = [(await ledger.credit(elder, 30 * (i + 1))).body for i in range(3)]
        env = {"TIMEBANK_DATABASE_URL": fresh_db, "TIMEBANK_LOG_KEY_FILE": str(key),
               "TIMEBANK_CHECKPOINT_DIR": str(tmp_path / "checkpoints")}  # fmt: skip
        status, out, err = await run_timebank("log", "seal", env=env)
        assert status == 0, out + err
        for _ in range(2):
            await ledger.credit(elder, 15)
        member_no = await app.fetchval("select member_no from members where id = $1", elder.id)
    finally:
        await app.close()

    pdf = tmp_path / "passbook.pdf"
    db_env = {"TIMEBANK_DATABASE_URL": fresh_db}
    status, out, err = await run_timebank("passbook", "--member", str(elder.id), "-o", str(pdf), env=db_env)
    assert status == 0, out + err
    assert f"({member_no}), 1 page(s)" in out
    text = pdf_text(pdf)
    assert member_no in text
    assert text.count("※") == 3  # two entries and the note that explains the mark
    assert "尚待记入公开日志" in text
    # Balances 30, 90, 180 minutes, then 195 and 210.
    for balance in ("30分", "1小时30分", "3小时", "3小时15分", "3小时30分"):
        assert balance in text
    (code,) = qr_codes(pdf)
    proof_file = tmp_path / "page.tlog-proof"
    proof_file.write_text(code)
    status, out, err = await run_timebank("proof", "check", str(proof_file), "--key", verifier)
    assert status == 0, out + err
    assert out.startswith(f"OK: transaction {credits[2]['id']} is leaf 2 "), out
    assert "共3条" in text.replace(" ", "")

    # From a later day: no entries, and the balance carried forward (承前余额) is the whole balance.
    later = tmp_path / "later.pdf"
    status, out, err = await run_timebank(
        "passbook", "--member", str(elder.id), "-o", str(later), "--from", "2999-01-01", env=db_env
    )
    assert status == 0, out + err
    text = pdf_text(later).replace(" ", "")
    assert "这段期间没有记录" in text
    assert "承前余额：3小时30分" in text
    assert "2999年1月1日" in text

    # Neither a member that does not exist nor a malformed id writes a file.
    missing = tmp_path / "missing.pdf"
    status, _, err = await run_timebank("passbook", "--member", str(uuid.uuid4()), "-o", str(missing), env=db_env)
    assert status == 2
    assert "no such member" in err
    assert not missing.exists()
    status, _, err = await run_timebank("passbook", "--member", "42", "-o", str(missing), env=db_env)
    assert status == 2
    assert not missing.exists()
