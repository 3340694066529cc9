"""What the log's routes answer."""

from __future__ import annotations

import msgspec


class InclusionProof(msgspec.Struct, frozen=True):
    # The transaction's place in the log, and the tree the proof is against.
    leaf_index: int
    tree_size: int
    # SHA-256(0x00 ‖ leaf bytes), base64; the leaf bytes are in tlog_proof's `extra` line.
    leaf_hash: str
    # RFC 6962 audit path, leaf's sibling first, base64.
    inclusion_path: list[str]
    # The signed checkpoint of tree_size (C2SP tlog-checkpoint in a C2SP signed-note).
    checkpoint: str
    # The same proof as a C2SP tlog-proof@v1, for `timebank proof check` (extra = the leaf bytes).
    tlog_proof: str


class ConsistencyProof(msgspec.Struct, frozen=True):
    first: int
    second: int
    # RFC 6962 consistency proof from tree size `first` to `second`, base64.
    path: list[str]
