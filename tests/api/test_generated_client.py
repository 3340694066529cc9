"""A team integrating the API generates a client from /schema/openapi.json and it works first time.

openapi-python-client (in the test extras) generates a package from the served document; the
generator must print no warning (each one is an operation or response it could not type). A
scenario then runs through the generated code alone — create, credit, gift, hold, capture,
reverse, read the statement — and reads refusals as typed Problem bodies with ProblemCode codes.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from timebank.app import create_app
from timebank.config import Settings

PACKAGE = "timebank_client"


@pytest.fixture(scope="module")
async def generated(client: AsyncTestClient[Any], tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The client package generated from the document the service serves."""
    document = (await client.get("/schema/openapi.json")).json()
    root = tmp_path_factory.mktemp("generated")
    spec = root / "openapi.json"
    spec.write_text(json.dumps(document))
    # The generator types bytes only as application/octet-stream; the passbook's PDF is bytes too.
    config = root / "config.json"
    config.write_text(json.dumps({"content_type_overrides": {"application/pdf": "application/octet-stream"}}))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--config",
            str(config),
            "--output-path",
            str(root / PACKAGE),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    assert "Cannot parse" not in output, output
    sys.path.insert(0, str(root))
    try:
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))


def _module(package: ModuleType, name: str) -> Any:
    sys.path.insert(0, str(Path(package.__file__ or "").parent.parent))
    try:
        return importlib.import_module(f"{PACKAGE}.{name}")
    finally:
        sys.path.pop(0)


@pytest.fixture
async def http(settings: Settings, database: str, admin_token: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings, database, run_jobs=False)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        yield client


def client_for(generated: ModuleType, http: AsyncTestClient[Any], token: str) -> Any:
    """A generated AuthenticatedClient that sends its requests through the in-process service."""
    client = generated.AuthenticatedClient(base_url=str(http.base_url), token=token)
    http.headers["Authorization"] = f"Bearer {token}"
    client.set_async_httpx_client(http)
    return client


async def test_a_generated_client_runs_a_day_of_the_time_bank(
    generated: ModuleType, http: AsyncTestClient[Any], admin_token: str
) -> None:
    m = _module(generated, "models")
    api = {name: _module(generated, f"api.{group}.{name}") for group, name in [
        ("communities", "create_community"),
        ("members", "create_member"),
        ("members", "issue_token"),
        ("ledger", "post_credit"),
        ("ledger", "post_transfer"),
        ("ledger", "reverse_transaction"),
        ("ledger", "list_entries"),
        ("ledger", "get_account"),
        ("holds", "place_hold"),
        ("holds", "capture_hold"),
        ("holds", "release_hold"),
    ]}  # fmt: skip
    admin = client_for(generated, http, admin_token)
    key = lambda: uuid.uuid4().hex  # noqa: E731 -- one fresh Idempotency-Key per intended write

    slug = "g-" + uuid.uuid4().hex[:12]
    community = await api["create_community"].asyncio(client=admin, body=m.CommunityCreate(slug=slug, name="紫轩社区"))
    assert isinstance(community, m.Community), community
    assert community.policy.unit_minutes == 15

    def member(name: str, *roles: Any) -> Any:
        return m.MemberCreate(display_name=name, roles=list(roles), grid="3")

    volunteer = await api["create_member"].asyncio(
        slug, client=admin, body=member("王丽华", m.MemberRole.VOLUNTEER, m.MemberRole.RESIDENT)
    )
    mother = await api["create_member"].asyncio(slug, client=admin, body=member("王秀英", m.MemberRole.RESIDENT))
    assert isinstance(volunteer, m.Member)
    assert isinstance(mother, m.Member)
    issued = await api["issue_token"].asyncio(volunteer.id, client=admin)
    assert isinstance(issued, m.IssuedToken)

    credit = await api["post_credit"].asyncio(
        client=admin,
        body=m.CreditCreate(member_id=volunteer.id, minutes=180, service_date=community.created_at.date()),
        idempotency_key=key(),
    )
    assert isinstance(credit, m.Transaction), credit
    assert credit.kind == m.TransactionKind.CREDIT

    # A refusal is a typed Problem whose code is a ProblemCode.
    refused = await api["post_credit"].asyncio_detailed(
        client=admin,
        body=m.CreditCreate(member_id=volunteer.id, minutes=7, service_date=community.created_at.date()),
        idempotency_key=key(),
    )
    assert refused.status_code == 422
    assert isinstance(refused.parsed, m.Problem)
    assert refused.parsed.code == m.ProblemCode.AMOUNT_NOT_MULTIPLE_OF_UNIT

    gift = await api["post_transfer"].asyncio(
        client=admin,
        body=m.TransferCreate(from_member_id=volunteer.id, to_member_id=mother.id, minutes=60, description="给妈妈"),
        idempotency_key=key(),
    )
    assert isinstance(gift, m.Transaction), gift
    assert gift.kind == m.TransactionKind.TRANSFER

    hold = await api["place_hold"].asyncio(
        client=admin, body=m.HoldCreate(member_id=volunteer.id, minutes=60, description="助餐"), idempotency_key=key()
    )
    assert isinstance(hold, m.Hold), hold
    assert hold.status == m.HoldStatus.PENDING
    captured = await api["capture_hold"].asyncio(
        hold.id, client=admin, body=m.HoldCapture(minutes=45), idempotency_key=key()
    )
    assert isinstance(captured, m.Transaction), captured
    assert captured.kind == m.TransactionKind.HOLD_CAPTURE
    second = await api["place_hold"].asyncio(
        client=admin, body=m.HoldCreate(member_id=volunteer.id, minutes=15), idempotency_key=key()
    )
    released = await api["release_hold"].asyncio(second.id, client=admin, idempotency_key=key())
    assert isinstance(released, m.Hold), released
    assert released.status == m.HoldStatus.RELEASED

    reversal = await api["reverse_transaction"].asyncio(
        gift.id, client=admin, body=m.ReversalCreate(reason="送错了人"), idempotency_key=key()
    )
    assert isinstance(reversal, m.Transaction), reversal
    assert reversal.reverses == gift.id
    again = await api["reverse_transaction"].asyncio_detailed(
        gift.id, client=admin, body=m.ReversalCreate(reason="送错了人"), idempotency_key=key()
    )
    assert isinstance(again.parsed, m.Problem)
    assert again.parsed.code == m.ProblemCode.ALREADY_REVERSED

    page = await api["list_entries"].asyncio(volunteer.account_id, client=admin, limit=10)
    assert isinstance(page, m.EntryPage), page
    assert [entry.minutes for entry in page.items] == [60, -45, -60, 180]
    account = await api["get_account"].asyncio(volunteer.account_id, client=admin)
    assert isinstance(account, m.Account)
    assert account.kind == m.AccountKind.MEMBER
    assert account.balance_minutes == 180 - 60 - 45 + 60
