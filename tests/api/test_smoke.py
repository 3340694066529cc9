"""A first walk through the API: the main flows work end to end."""

from __future__ import annotations

from tests.client import Api


async def test_health(api: Api) -> None:
    response = await api.get("/health", None)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    ready = await api.get("/ready", None)
    assert ready.status_code == 200


async def test_credit_gift_redeem(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    elder = await api.member(community, "resident")
    credit = await api.credit(volunteer, 120)
    assert credit.status_code == 201, credit.text
    body = credit.json()
    assert body["kind"] == "credit"
    assert sorted(p["minutes"] for p in body["postings"]) == [-120, 120]

    gift = await api.post(
        "/v1/transfers", volunteer.token, {"from_member_id": volunteer.id, "to_member_id": elder.id, "minutes": 60}
    )
    assert gift.status_code == 201, gift.text
    redeem = await api.post("/v1/redemptions", elder.token, {"member_id": elder.id, "minutes": 45})
    assert redeem.status_code == 201, redeem.text
    assert await api.balance(volunteer.account_id) == 60
    assert await api.balance(elder.account_id) == 15
    assert await api.balance(community.accounts["issuance"]) == -120
    assert await api.balance(community.accounts["services"]) == 45
