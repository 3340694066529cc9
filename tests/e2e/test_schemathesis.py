"""Schemathesis, run as an integrating team would, finds nothing: every default check (positive
acceptance, negative rejection, unsupported methods, missing required headers, status code,
content type, headers and schema conformance) over every phase, stateful links included.

It runs the real `timebank serve` process on a fresh database, with an admin token, through the
`st` command line and tests/e2e/schemathesis.toml (which says why 422 counts as an acceptance).
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.server import running_server

CONFIG = Path(__file__).with_name("schemathesis.toml")

pytestmark = pytest.mark.slow


async def test_schemathesis_default_checks_find_nothing(fresh_db: str, tmp_path: Path) -> None:
    token = "tb_st_" + secrets.token_urlsafe(24)
    async with running_server(fresh_db, TIMEBANK_ADMIN_TOKEN=token) as server:
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG),
            "run", f"{server.url}/schema/openapi.json",
            "--header", f"Authorization: Bearer {token}",
            "--max-examples", "20", "--workers", "1", "--seed", "20261201",
            "--no-color",
        ]  # fmt: skip
        result = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
        )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "Tested: " in report, report
    assert " failures" not in report.splitlines()[-1], report
