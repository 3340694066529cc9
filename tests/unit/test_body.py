"""Strict body decoding names each fault by its JSON path."""

from __future__ import annotations

import pytest

from timebank.errors import InvalidRequestError
from timebank.http.body import decode_strict
from timebank.ledger.models import CreditCreate

MEMBER = "6f1c1a52-4f55-4a5c-9d3a-0c6f8d0b9e11"


def _fault(body: bytes) -> dict[str, str]:
    with pytest.raises(InvalidRequestError) as caught:
        decode_strict(body, CreditCreate)
    errors = caught.value.extra["errors"]
    assert len(errors) == 1
    fault: dict[str, str] = errors[0]
    return fault


def test_valid_body_decodes() -> None:
    credit = decode_strict(
        f'{{"member_id": "{MEMBER}", "minutes": 60, "service_date": "2026-11-01"}}'.encode(), CreditCreate
    )
    assert isinstance(credit, CreditCreate)
    assert credit.minutes == 60


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (f'{{"member_id": "{MEMBER}", "minutes": "60", "service_date": "2026-11-01"}}', "$.minutes"),
        (f'{{"member_id": "{MEMBER}", "minutes": 1.5, "service_date": "2026-11-01"}}', "$.minutes"),
        (f'{{"member_id": "{MEMBER}", "service_date": "2026-11-01"}}', "$.minutes"),
        (f'{{"member_id": "{MEMBER}", "minutes": 60, "service_date": "2026-11-01", "x": 1}}', "$.x"),
        ('{"member_id": "nope", "minutes": 60, "service_date": "2026-11-01"}', "$.member_id"),
        (f'{{"member_id": "{MEMBER}", "minutes": 60, "minutes": 15, "service_date": "2026-11-01"}}', "$.minutes"),
        (f'{{"member_id": "{MEMBER}", "minutes": 60, "service_date": "2026-11-01", "description": "a\\u0000"}}',
         "$.description"),
    ],
)  # fmt: skip
def test_fault_paths(body: str, field: str) -> None:
    assert _fault(body.encode())["field"] == field


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe", b"[" * 100_000, b"", b'"just a string"'])
def test_not_json(body: bytes) -> None:
    assert _fault(body)["field"] == "$"
