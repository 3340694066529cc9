"""The public log over HTTP: the checkpoint and consistency proofs for anyone, a transaction's
inclusion proof for whoever may read it, 409 not_yet_logged before it is sealed, and proofs that
`timebank proof check` accepts offline with the verifier key alone."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from tests.client import Api, Community
from tests.eventually import eventually
from tests.log.conftest import LoggedService, log_settings, run_timebank
from tests.sql.support import concurrent_api
from timebank.auth.bootstrap import ensure_admin_token
from timebank.config import Settings
from timebank.log import merkle
from timebank.log.leaf import leaf_from_served
from timebank.log.note import open_checkpoint
from timebank.log.sealer import seal_once
from timebank.log.signer import checkpoint_signer


async def _credit(api: Api) -> tuple[dict[str, Any], str, str]:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    response = await api.post(
        "/v1/credits", api.admin_token,
        {"member_id": volunteer.id, "minutes": 60, "service_date": "2026-11-01", "description": "陪老人散步"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json(), volunteer.token, community.slug


async def _proof(api: Api, transaction_id: str, token: str, **params: Any) -> Any:
    return await api.get(f"/v1/transactions/{transaction_id}/proof", token, **params)


async def test_a_credit_is_logged_within_seconds_and_its_proof_verifies(logged: LoggedService) -> None:
    api = logged.api
    transaction, volunteer_token, _ = await _credit(api)
    response = await eventually(
        lambda: _proof(api, transaction["id"], volunteer_token), lambda r: r.status_code == 200, what="proof"
    )
    proof = response.json()
    assert set(proof) == {"leaf_index", "tree_size", "leaf_hash", "inclusion_path", "checkpoint", "tlog_proof"}
    checkpoint = open_checkpoint(proof["checkpoint"], logged.verifier)
    assert checkpoint.size == proof["tree_size"]
    # The leaf is the transaction as served, without reversed_by and created_by_name.
    served = (await api.get(f"/v1/transactions/{transaction['id']}", api.admin_token)).json()
    leaf = leaf_from_served(served)
    expected = {k: v for k, v in served.items() if k not in ("reversed_by", "created_by_name")}
    assert json.loads(leaf) == expected
    assert base64.b64decode(proof["leaf_hash"]) == merkle.leaf_hash(leaf)
    path = [base64.b64decode(h) for h in proof["inclusion_path"]]
    merkle.verify_inclusion(merkle.leaf_hash(leaf), proof["leaf_index"], checkpoint.size, path, checkpoint.root)

    # The checkpoint needs no token, is plain text, and is the one saved outside the database.
    latest = await api.client.get("/v1/log/checkpoint")
    assert latest.status_code == 200
    assert latest.headers["content-type"].startswith("text/plain")
    assert open_checkpoint(latest.text, logged.verifier).size >= checkpoint.size
    saved = [p.read_text() for p in logged.checkpoints.glob("checkpoint-*")]
    assert proof["checkpoint"] in saved

    # Offline: only the verifier key, the proof file, and (optionally) the transaction as served.
    proof_file = Path(logged.checkpoints.parent / "credit.tlog-proof")
    proof_file.write_text(proof["tlog_proof"])
    code, out, err = await run_timebank("proof", "check", str(proof_file), "--key", logged.verifier.encode())
    assert code == 0, out + err
    assert out.startswith(f"OK: transaction {transaction['id']} is leaf {proof['leaf_index']}")
    served_file = proof_file.with_suffix(".json")
    served_file.write_text(json.dumps(served, ensure_ascii=False))
    code, out, err = await run_timebank(
        "proof", "check", str(proof_file), "--key", logged.verifier.encode(), "--transaction", str(served_file)
    )
    assert code == 0, out + err
    # A changed amount, a changed path, another key: each refused.
    served_file.write_text(
        json.dumps({**served, "postings": [{**p, "minutes": p["minutes"] * 2} for p in served["postings"]]})
    )
    code, out, _ = await run_timebank(
        "proof", "check", str(proof_file), "--key", logged.verifier.encode(), "--transaction", str(served_file)
    )
    assert code == 1
    assert out.startswith("FAILED")
    lines = proof["tlog_proof"].split("\n")
    extra = next(i for i, line in enumerate(lines) if line.startswith("extra "))
    forged = json.loads(base64.b64decode(lines[extra][6:]))
    forged["description"] = "forged"
    lines[extra] = "extra " + base64.b64encode(json.dumps(forged).encode()).decode()
    proof_file.write_text("\n".join(lines))
    code, out, _ = await run_timebank("proof", "check", str(proof_file), "--key", logged.verifier.encode())
    assert code == 1
    assert "FAILED" in out
    proof_file.write_text(proof["tlog_proof"])
    other_key = "timebank.test/log+00000000+" + base64.b64encode(b"\x01" + b"\x00" * 32).decode()
    code, out, err = await run_timebank("proof", "check", str(proof_file), "--key", other_key)
    assert code == 1
    assert "FAILED" in out


async def test_consistency_proofs_need_no_token_and_verify(logged: LoggedService) -> None:
    api = logged.api
    first_tx, token, _ = await _credit(api)
    first = (await eventually(lambda: _proof(api, first_tx["id"], token), lambda r: r.status_code == 200)).json()
    second_tx, token2, _ = await _credit(api)
    second = (await eventually(lambda: _proof(api, second_tx["id"], token2), lambda r: r.status_code == 200)).json()
    old = open_checkpoint(first["checkpoint"], logged.verifier)
    new = open_checkpoint(second["checkpoint"], logged.verifier)
    assert new.size > old.size
    response = await api.client.get("/v1/log/consistency", params={"first": old.size, "second": new.size})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["first"], body["second"]) == (old.size, new.size)
    merkle.verify_consistency(old.size, new.size, [base64.b64decode(h) for h in body["path"]], old.root, new.root)
    # The older transaction's proof against the newer checkpoint, asked for by size.
    again = await _proof(api, first_tx["id"], token, tree_size=new.size)
    assert again.status_code == 200
    assert again.json()["checkpoint"] == second["checkpoint"]
    backwards = await api.client.get("/v1/log/consistency", params={"first": new.size, "second": old.size})
    assert backwards.status_code == 422, backwards.text
    assert backwards.json()["code"] == "invalid_tree_size"
    ahead = await api.client.get("/v1/log/consistency", params={"first": 0, "second": new.size + 10**6})
    assert ahead.status_code == 409, ahead.text
    assert ahead.json()["code"] == "not_yet_logged"
    assert ahead.headers["Retry-After"] == "1"
    for params in (
        {"first": "x", "second": 1},
        {"first": 1},
        {"first": -1, "second": 1},
        {"first": 0, "second": 10**13},
    ):
        refused = await api.client.get("/v1/log/consistency", params=params)
        assert refused.status_code == 400, (params, refused.text)
    # The newer transaction is not in the older tree.
    bad_size = await _proof(api, second_tx["id"], token2, tree_size=old.size)
    assert bad_size.status_code == 422
    assert bad_size.json()["code"] == "invalid_tree_size"
    assert bad_size.json()["errors"][0]["field"] == "tree_size"
    unsigned = await _proof(api, second_tx["id"], token2, tree_size=new.size + 5)
    assert unsigned.status_code == 409
    assert unsigned.json()["code"] == "not_yet_logged"


async def test_not_yet_logged_is_409_with_retry_after_and_only_readers_get_proofs(
    fresh_db: str, settings: Settings, admin_token: str, tmp_path: Path
) -> None:
    await ensure_admin_token(fresh_db, admin_token)
    slow, _, _, _ = log_settings(settings, tmp_path, 3600.0)  # the sealer runs once at start, then sleeps
    async with concurrent_api(slow, fresh_db, admin_token) as api:
        assert (await api.client.get("/v1/log/checkpoint")).json()["code"] == "not_found"
        transaction, token, slug = await _credit(api)
        waiting = await _proof(api, transaction["id"], token)
        assert waiting.status_code == 409
        assert waiting.json()["code"] == "not_yet_logged"
        assert waiting.headers["Retry-After"] == "3600"
        chinese = await api.client.get(
            f"/v1/transactions/{transaction['id']}/proof",
            headers={"Authorization": f"Bearer {token}", "Accept-Language": "zh-CN"},
        )
        assert chinese.json()["title"] == "尚未写入公开日志"
        signer = checkpoint_signer(slow.log_key_file, slow.checkpoint_dir)
        async with api.app.state.db.connection() as conn:
            await seal_once(conn, signer)  # what `timebank log seal` does
        assert (await _proof(api, transaction["id"], token)).status_code == 200
        # Who may read the transaction may have its proof; others may not.
        community = await api.community()
        stranger = await api.member(community, "volunteer")
        neighbour = await api.member(await _same(api, slug), "volunteer")
        assert (await _proof(api, transaction["id"], stranger.token)).status_code == 404
        assert (await _proof(api, transaction["id"], neighbour.token)).status_code == 403
        assert (await _proof(api, transaction["id"], None)).status_code == 401


async def _same(api: Api, slug: str) -> Community:
    body = (await api.get(f"/v1/communities/{slug}", api.admin_token)).json()
    return Community(slug=slug, id=body["id"], accounts=body.get("accounts", {}))


async def test_the_session_service_serves_the_routes_in_its_schema(client: AsyncTestClient[Any]) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    assert schema["paths"]["/v1/log/checkpoint"]["get"]["security"] == []
    assert schema["paths"]["/v1/log/consistency"]["get"]["security"] == []
    proof = schema["paths"]["/v1/transactions/{transaction_id}/proof"]["get"]
    assert proof["responses"]["409"]["headers"]["Retry-After"]["required"] is True
