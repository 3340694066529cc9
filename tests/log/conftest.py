"""A served API with the public log switched on: a signing key, a checkpoint directory, a fast sealer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from tests.sql.support import ServedApi, concurrent_api
from timebank.auth.bootstrap import ensure_admin_token
from timebank.config import Settings
from timebank.log.note import Signer, Verifier


def command() -> list[str]:
    """The installed console script next to this interpreter (the venv's), else the module."""
    script = Path(sys.executable).with_name("timebank")
    return [str(script)] if script.exists() else [sys.executable, "-m", "timebank.cli"]


async def run_timebank(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    process = await asyncio.create_subprocess_exec(
        *command(), *args, env=base | {"TIMEBANK_LOG_FORMAT": "json"} | (env or {}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@dataclass
class LoggedService:
    url: str
    api: ServedApi
    settings: Settings
    verifier: Verifier
    key_file: Path
    checkpoints: Path


def log_settings(settings: Settings, tmp_path: Path, interval: float) -> tuple[Settings, Verifier, Path, Path]:
    signer = Signer.generate("timebank.test/log")
    key_file = tmp_path / "log.key"
    key_file.write_text(signer.encode() + "\n")
    checkpoints = tmp_path / "checkpoints"
    changed = msgspec.structs.replace(
        settings, log_key_file=str(key_file), checkpoint_dir=str(checkpoints), log_seal_interval_seconds=interval
    )
    return changed, signer.verifier, key_file, checkpoints


@pytest.fixture
async def logged(fresh_db: str, settings: Settings, admin_token: str, tmp_path: Path) -> AsyncIterator[LoggedService]:
    """The service on a database of its own, sealing every 0.1 s."""
    await ensure_admin_token(fresh_db, admin_token)
    changed, verifier, key_file, checkpoints = log_settings(settings, tmp_path, 0.1)
    async with concurrent_api(changed, fresh_db, admin_token) as api:
        yield LoggedService(fresh_db, api, changed, verifier, key_file, checkpoints)
