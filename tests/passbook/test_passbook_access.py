"""Who may print a member's passbook (the member itself, its community's coordinators and auditors;
everyone else 403/404 as for reading the member), and the documented problem when no font writes
Chinese: 503 pdf_font_missing saying exactly what to install, in English and in Chinese, and the
command's exit status 2 with the same sentence."""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec
import pytest

from tests.client import Api
from tests.log.conftest import run_timebank
from tests.passbook.tools import require_tools
from tests.sql.support import concurrent_api
from timebank.config import Settings
from timebank.errors import CODES
from timebank.passbook import fonts


async def test_the_member_and_its_staff_may_print_it_others_may_not(api: Api) -> None:
    require_tools()
    community = await api.community()
    elder = await api.member(community, "resident", name="孙玉珍")
    coordinator = await api.member(community, "coordinator")
    auditor = await api.member(community, "auditor")
    neighbour = await api.member(community, "resident")
    elsewhere = await api.community()
    other_coordinator = await api.member(elsewhere, "coordinator")
    other_auditor = await api.member(elsewhere, "auditor")
    path = f"/v1/members/{elder.id}/passbook.pdf"

    for token in (elder.token, coordinator.token, auditor.token, api.admin_token):
        response = await api.get(path, token)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        assert response.content.startswith(b"%PDF-")
        assert response.headers["cache-control"] == "private, no-store"
    # Another member of the community: forbidden, as reading that member is.
    response = await api.get(path, neighbour.token)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "forbidden"
    assert (await api.get(f"/v1/members/{elder.id}", neighbour.token)).status_code == 403
    # Another community's staff, and a member that does not exist: nothing to see.
    for token in (other_coordinator.token, other_auditor.token):
        response = await api.get(path, token)
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "not_found"
    response = await api.get(f"/v1/members/{uuid.uuid4()}/passbook.pdf", coordinator.token)
    assert response.status_code == 404
    assert (await api.get(path, None)).status_code == 401


async def test_from_and_to_are_checked_like_the_statement(api: Api) -> None:
    community = await api.community()
    elder = await api.member(community, "resident")
    path = f"/v1/members/{elder.id}/passbook.pdf"
    response = await api.get(path, elder.token, **{"from": "2026-13-01"})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request"
    response = await api.get(path, elder.token, **{"from": "2026-12-01", "to": "2026-11-01"})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_date_range"


async def test_a_missing_font_is_a_503_that_says_what_to_install(
    settings: Settings, database: str, admin_token: str, tmp_path: Path
) -> None:
    not_a_font = tmp_path / "not-a-font.ttf"
    not_a_font.write_bytes(b"this is no font")
    changed = msgspec.structs.replace(settings, pdf_font=str(not_a_font))
    async with concurrent_api(changed, database, admin_token) as api:
        community = await api.community()
        elder = await api.member(community, "resident")
        path = f"/v1/members/{elder.id}/passbook.pdf"
        response = await api.get(path, elder.token)
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["code"] == "pdf_font_missing"
        assert problem["title"] == CODES["pdf_font_missing"].title
        assert "apt-get install fonts-noto-cjk" in problem["detail"]
        assert f"TIMEBANK_PDF_FONT names {not_a_font}" in problem["detail"]
        assert response.headers["retry-after"] == "300"
        response = await api.client.get(path, headers=api.auth(elder.token) | {"Accept-Language": "zh-CN"})
        problem = response.json()
        assert problem["code"] == "pdf_font_missing"
        assert problem["title"] == "缺少打印存折所需的中文字体"
        assert "apt-get install fonts-noto-cjk" in problem["detail"]
        assert "字体" in problem["detail"]
        # Permission comes first: whoever may not read the member learns nothing about fonts.
        stranger = await api.member(await api.community(), "coordinator")
        assert (await api.get(path, stranger.token)).status_code == 404

    # The command says the same and exits 2, without writing a file.
    out_file = tmp_path / "passbook.pdf"
    env = {"TIMEBANK_DATABASE_URL": database, "TIMEBANK_PDF_FONT": str(not_a_font)}
    status, _, err = await run_timebank("passbook", "--member", elder.id, "-o", str(out_file), env=env)
    assert status == 2
    assert "apt-get install fonts-noto-cjk" in err
    assert not out_file.exists()


def test_with_no_font_on_the_machine_the_message_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "_CANDIDATES", ())
    monkeypatch.setattr(fonts, "_fontconfig_choice", lambda: None)
    fonts._find.cache_clear()
    try:
        with pytest.raises(fonts.FontMissingError) as raised:
            fonts.find_font(None)
    finally:
        fonts._find.cache_clear()
    assert raised.value.code == "pdf_font_missing"
    assert "install one with `apt-get install fonts-noto-cjk`" in raised.value.detail
    assert "TIMEBANK_PDF_FONT" in raised.value.detail


def test_a_fallback_font_without_digits_is_not_taken() -> None:
    """Droid Sans Fallback (fonts-droid-fallback) has Chinese but no digits: dates would print blank."""
    droid = Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")
    if not droid.exists():
        pytest.skip("needs fonts-droid-fallback to show it is passed over")
    assert fonts.usable(str(droid)) is None
