"""The README's quick start works as written, in order, against the real server.

Its shell blocks after the two install commands are run by bash against `timebank serve` on a
database of the test's own: the installed console script stands in for `.venv/bin/timebank` and the
server's URL for http://127.0.0.1:8000. Nothing else is changed, so a command that contradicts an
earlier one (a second `zixuan`, a credit without its Idempotency-Key) fails here first.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_compose import quick_start_commands
from tests.e2e.server import Server, running_server

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def as_run_here(block: str, server: Server) -> str:
    return block.replace(".venv/bin/", f"{BIN}/").replace("http://127.0.0.1:8000", server.url)


async def bash(script: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


@pytest.mark.skipif(shutil.which("curl") is None, reason="the quick start uses curl")
async def test_the_quick_start_works_in_order(fresh_db: str) -> None:
    blocks = quick_start_commands()[2:]
    assert len(blocks) >= 3, blocks
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")} | {"TIMEBANK_DATABASE_URL": fresh_db}
    async with running_server(fresh_db) as server:
        session, credit, community = (as_run_here(block, server) for block in blocks[:3])
        # One shell, as a person types it: TOKEN and MEMBER carry over from block to block.
        code, output = await bash("\n".join([session, credit, credit, community]), env)
    assert code == 0, output
    assert "紫轩社区 (zixuan) loaded" in output, output
    assert '"slug":"zixuan"' in output, output
    answers = output.split("HTTP/1.1 ")[1:]
    assert [answer[:3] for answer in answers] == ["201", "201"], output
    assert "idempotent-replayed: true" not in answers[0].lower()
    assert "idempotent-replayed: true" in answers[1].lower(), answers[1]
    assert answers[0].split("\r\n\r\n", 1)[1][:60] == answers[1].split("\r\n\r\n", 1)[1][:60]
    assert '"slug":"my-street"' in output, output
    assert "Traceback" not in output
