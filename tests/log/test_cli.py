"""`timebank log keygen` and `timebank log seal`, the real commands."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.log.conftest import run_timebank
from tests.sql.support import Ledger, app_connect
from timebank.log.note import Verifier, open_checkpoint
from timebank.log.signer import load_signer


async def test_keygen_writes_a_private_key_for_its_owner_only_and_prints_the_verifier_key(tmp_path: Path) -> None:
    key = tmp_path / "log.key"
    code, out, err = await run_timebank("log", "keygen", "--name", "timebank.example/街道", "--out", str(key))
    assert code == 2  # a key name is printable ASCII
    assert "key name" in err
    code, out, err = await run_timebank("log", "keygen", "--name", "timebank.example/log", "--out", str(key))
    assert code == 0, out + err
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    verifier = Verifier.parse(out.strip().splitlines()[-1])
    assert verifier.name == "timebank.example/log"
    assert out.strip().splitlines()[-1] == load_signer(key).verifier.encode()
    assert "PRIVATE+KEY" not in out  # the private key is never printed
    code, _, err = await run_timebank("log", "keygen", "--name", "timebank.example/log", "--out", str(key))
    assert code == 2  # never over an existing key
    assert "cannot create" in err


async def test_log_seal_appends_and_signs_once(fresh_db: str, tmp_path: Path) -> None:
    key = tmp_path / "log.key"
    code, out, _ = await run_timebank("log", "keygen", "--name", "timebank.example/log", "--out", str(key))
    assert code == 0
    verifier = Verifier.parse(out.strip().splitlines()[-1])
    app = await app_connect(fresh_db)
    try:
        ledger = await Ledger.with_new_admin(app, fresh_db)
        volunteer = await ledger.member(await ledger.community(), "volunteer")
        for _ in range(3):
            await ledger.credit(volunteer, 15)
    finally:
        await app.close()
    env = {"TIMEBANK_DATABASE_URL": fresh_db, "TIMEBANK_LOG_KEY_FILE": str(key)}
    code, _, err = await run_timebank("log", "seal", env=env)
    assert code == 2
    assert "TIMEBANK_CHECKPOINT_DIR" in err
    env["TIMEBANK_CHECKPOINT_DIR"] = str(tmp_path / "checkpoints")
    code, out, err = await run_timebank("log", "seal", env=env)
    assert code == 0, out + err
    assert "appended 3 transaction(s); the log has 3 leaves; a checkpoint signed" in out
    (saved,) = (tmp_path / "checkpoints").glob("checkpoint-*")
    assert open_checkpoint(saved.read_text(), verifier).size == 3
    code, out, _ = await run_timebank("log", "seal", env=env)
    assert "appended 0 transaction(s); the log has 3 leaves; no new checkpoint" in out
