"""The public log: a Merkle tree of every transaction, signed checkpoints, and proofs."""
