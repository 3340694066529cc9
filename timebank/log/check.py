"""Checking a proof offline: with the log's verifier key only, no database and no service."""

from __future__ import annotations

import json

from timebank.log import merkle
from timebank.log.leaf import leaf_from_served
from timebank.log.note import NoteError, TlogProof, Verifier, open_checkpoint


class ProofCheckError(ValueError):
    """The proof does not show what it claims; the message says why."""


def check_proof(verifier_key: str, proof_text: str, transaction_json: bytes | None = None) -> str:
    """Verify a C2SP tlog-proof: the checkpoint's signature and origin, then the leaf's inclusion.

    The leaf is the transaction given (its JSON as the API serves it), or else the leaf bytes in the
    proof's `extra` line, which the inclusion proof then authenticates. Returns a one-line summary.
    """
    try:
        verifier = Verifier.parse(verifier_key)
        proof = TlogProof.parse(proof_text)
        checkpoint = open_checkpoint(proof.checkpoint, verifier)
    except NoteError as exc:
        raise ProofCheckError(str(exc)) from None
    if transaction_json is not None:
        try:
            leaf = leaf_from_served(json.loads(transaction_json))
        except (ValueError, TypeError) as exc:
            raise ProofCheckError(f"the transaction is not a served transaction's JSON: {exc}") from None
        if proof.extra is not None and proof.extra != leaf:
            raise ProofCheckError("the transaction given is not the leaf the proof carries")
    elif proof.extra is not None:
        leaf = proof.extra
    else:
        raise ProofCheckError("the proof carries no leaf: give the transaction with --transaction")
    try:
        merkle.verify_inclusion(merkle.leaf_hash(leaf), proof.index, checkpoint.size, proof.path, checkpoint.root)
    except merkle.ProofError as exc:
        raise ProofCheckError(str(exc)) from None
    try:
        transaction_id = json.loads(leaf).get("id", "?")
    except ValueError:
        transaction_id = "?"
    return (
        f"OK: transaction {transaction_id} is leaf {proof.index} of {checkpoint.origin}, "
        f"in the checkpoint of {checkpoint.size} leaves signed by {verifier.name} "
        f"(root {checkpoint.root.hex()[:16]}…)"
    )
