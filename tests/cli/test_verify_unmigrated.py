"""`timebank verify` on a database without the schema says so instead of a traceback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

from tests import pg


async def test_verify_on_an_unmigrated_database(server_url: str) -> None:
    name = "timebank_test_empty_" + uuid.uuid4().hex[:8]
    url = await pg.create_database(server_url, name)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")} | {"TIMEBANK_DATABASE_URL": url}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "timebank.cli", "verify", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        _, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await pg.drop_database(server_url, name)
    assert process.returncode == 2
    assert "timebank migrate" in err.decode()
    assert "Traceback" not in err.decode()
