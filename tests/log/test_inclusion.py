"""Inclusion proofs read in one statement (log_inclusion) are RFC 6962's for every leaf at every
signed size: the stored hashes it reads are a superset of the ones each proof folds."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import msgspec

from tests.sql.support import Ledger, app_connect
from timebank.config import Settings
from timebank.db import Database
from timebank.log import merkle
from timebank.log.leaf import leaf_from_json
from timebank.log.note import Signer, open_checkpoint
from timebank.log.sealer import seal_once
from timebank.log.service import inclusion_proof
from timebank.log.signer import CheckpointSigner

SIZES = (1, 2, 3, 5, 8, 13, 16, 21, 33)


async def test_every_leaf_has_a_valid_proof_at_every_signed_size(
    fresh_db: str, settings: Settings, tmp_path: Path
) -> None:
    signer = CheckpointSigner(Signer.generate("timebank.test/log"), tmp_path / "checkpoints")
    app = await app_connect(fresh_db)
    db = await Database.connect(msgspec.structs.replace(settings, pool_max_size=2), fresh_db)
    try:
        ledger = await Ledger.with_new_admin(app, fresh_db)
        volunteer = await ledger.member(await ledger.community(), "volunteer")
        ids: list[uuid.UUID] = []
        for size in SIZES:
            while len(ids) < size:
                ids.append(uuid.UUID((await ledger.credit(volunteer, 15)).body["id"]))
            assert (await seal_once(app, signer)).tree_size == size
        roots = {}
        for note in await app.fetch("select note from log_checkpoints"):
            checkpoint = open_checkpoint(note["note"], signer.signer.verifier)
            roots[checkpoint.size] = checkpoint.root
        assert sorted(roots) == list(SIZES)
        for index, transaction_id in enumerate(ids):
            leaf = leaf_from_json(await app.fetchval("select _log_leaf_json($1)::text", transaction_id))
            for size in (s for s in SIZES if s > index):
                proof = await inclusion_proof(db, transaction_id, size, 1.0)
                assert (proof.leaf_index, proof.tree_size) == (index, size)
                path = [base64.b64decode(h) for h in proof.inclusion_path]
                assert base64.b64decode(proof.leaf_hash) == merkle.leaf_hash(leaf)
                merkle.verify_inclusion(merkle.leaf_hash(leaf), index, size, path, roots[size])
    finally:
        await db.close()
        await app.close()
