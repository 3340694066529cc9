"""The documented stable list of error codes is the registry: docs/errors.md is generated from it."""

from __future__ import annotations

from pathlib import Path

from timebank.errors import CODES
from timebank.http.error_codes_doc import render
from timebank.http.responses import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]


def test_docs_errors_md_is_current() -> None:
    committed = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    assert committed == render(), "regenerate: python -m timebank.http.error_codes_doc > docs/errors.md"


def test_every_code_has_a_real_example_and_both_titles() -> None:
    assert set(EXAMPLES) == set(CODES)
    for code, entry in CODES.items():
        assert entry.title, code
        assert entry.title_zh, code
        assert EXAMPLES[code]["detail"], code
        assert 400 <= entry.status <= 599, code


def test_the_codes_of_the_contract_are_all_registered() -> None:
    """API.md's stable list and its 2026-12 additions, plus the protocol codes the service sends."""
    contract = {
        *("invalid_request", "unauthenticated", "forbidden", "not_found", "idempotency_key_required"),
        *("idempotency_key_reused", "community_exists", "amount_not_multiple_of_unit", "amount_out_of_range"),
        *("insufficient_balance", "balance_cap_exceeded", "not_a_volunteer", "same_account"),
        *("cross_community_not_allowed", "already_reversed", "cannot_reverse_reversal", "hold_not_pending"),
        *("capture_exceeds_hold", "conflict_retry", "unavailable", "not_eligible", "not_a_relative"),
        *("service_type_exists", "invalid_transition", "not_yet_logged", "too_many_attempts", "member_exists"),
        *("service_date_in_future", "method_not_allowed", "unsupported_media_type", "request_too_large"),
        *("too_many_requests", "internal_error", "conflict"),
    }
    assert contract <= set(CODES)
