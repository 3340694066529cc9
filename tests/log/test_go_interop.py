"""Interoperability with the reference implementation: Go's golang.org/x/mod/sumdb/note opens our
checkpoints with our verifier key, and golang.org/x/mod/sumdb/tlog checks our inclusion and
consistency proofs (and refuses altered ones). Skipped when Go is absent, except in CI."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.eventually import eventually
from tests.log.conftest import LoggedService
from tests.log.test_api import _credit, _proof
from tests.tools import missing_tool

GOPATH = "/usr/share/gocode"
INSTALL = "apt-get install -y golang-go golang-golang-x-mod-dev"
SOURCE = Path(__file__).with_name("go_interop") / "main.go"


def go_checker(tmp_path: Path) -> Path:
    """Build the Go program (offline: GOPATH mode on Debian's packaged golang.org/x/mod)."""
    go = shutil.which("go")
    if go is None or not Path(GOPATH, "src/golang.org/x/mod/sumdb/tlog").is_dir():
        missing_tool("Go and golang.org/x/mod/sumdb", INSTALL)
    build = tmp_path / "go"
    build.mkdir()
    shutil.copy(SOURCE, build / "main.go")
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(build), "GOPATH": GOPATH, "GO111MODULE": "off",
        "GOFLAGS": "", "GOCACHE": str(build / "cache"), "GOPROXY": "off", "CGO_ENABLED": "0",
    }  # fmt: skip
    subprocess.run([go, "build", "-o", "checker", "main.go"], cwd=build, env=env, check=True, timeout=300)
    return build / "checker"


def _flip(encoded: str) -> str:
    raw = bytearray(base64.b64decode(encoded))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


async def test_go_sumdb_opens_our_checkpoints_and_checks_our_proofs(logged: LoggedService, tmp_path: Path) -> None:
    checker = await asyncio.to_thread(go_checker, tmp_path)
    api = logged.api
    proofs = []
    for _ in range(3):
        transaction, token, _ = await _credit(api)
        response = await eventually(
            lambda t=transaction, k=token: _proof(api, t["id"], k), lambda r: r.status_code == 200
        )
        proofs.append(response.json())
    # Three proofs (of growing trees), and the first transaction's proof against the last tree.
    first_again = await _proof(api, transaction_id(proofs[0]), api.admin_token, tree_size=proofs[-1]["tree_size"])
    proofs.append(first_again.json())
    inclusion: list[dict[str, Any]] = []
    for proof in proofs:
        leaf = proof["tlog_proof"].split("\n")[1].removeprefix("extra ")
        case = {"leaf": leaf, "index": proof["leaf_index"], "path": proof["inclusion_path"],
                "checkpoint": proof["checkpoint"], "want_ok": True}  # fmt: skip
        inclusion.append(case)
        if proof["inclusion_path"]:
            inclusion.append({**case, "path": [_flip(proof["inclusion_path"][0]), *proof["inclusion_path"][1:]],
                              "want_ok": False})  # fmt: skip
        inclusion.append({**case, "index": case["index"] + 1, "want_ok": False})
        signature_at = case["checkpoint"].rindex(" ") + 1
        forged = case["checkpoint"][:signature_at] + _flip(case["checkpoint"][signature_at:].strip()) + "\n"
        inclusion.append({**case, "checkpoint": forged, "want_ok": False})
    consistency: list[dict[str, Any]] = []
    for old, new in ((proofs[0], proofs[1]), (proofs[1], proofs[2]), (proofs[0], proofs[2])):
        first, second = old["tree_size"], new["tree_size"]
        body = (await api.client.get("/v1/log/consistency", params={"first": first, "second": second})).json()
        case = {"old": old["checkpoint"], "new": new["checkpoint"], "path": body["path"], "want_ok": True}
        consistency.append(case)
        if body["path"]:
            consistency.append({**case, "path": [_flip(body["path"][-1]), *body["path"][:-1]], "want_ok": False})
    document = {"verifier_key": logged.verifier.encode(), "inclusion": inclusion, "consistency": consistency}
    result = await asyncio.to_thread(
        subprocess.run, [str(checker)], input=json.dumps(document), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("as expected") == len(inclusion) + len(consistency)


def transaction_id(proof: dict[str, Any]) -> str:
    leaf = base64.b64decode(proof["tlog_proof"].split("\n")[1].removeprefix("extra "))
    return str(json.loads(leaf)["id"])
