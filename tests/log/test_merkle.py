"""The tree's hashes and proofs against a direct transcription of RFC 6962's definitions."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from timebank.log import merkle


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, recursively, over leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n])."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """RFC 6962 §2.1.2 SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def build(n: int) -> tuple[list[bytes], dict[merkle.Node, bytes]]:
    leaves = [merkle.leaf_hash(str(i).encode()) for i in range(n)]
    stored: dict[merkle.Node, bytes] = {}
    size = 0
    # Appended in uneven batches, as the sealer does.
    for step in (1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144) * 10:
        batch = leaves[size : size + step]
        if not batch:
            break
        stored.update(merkle.append(size, batch, stored.__getitem__))
        size += len(batch)
    return leaves, stored


LEAVES, STORED = build(300)


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_roots_and_inclusion_proofs_follow_the_rfc(case: tuple[int, int]) -> None:
    n, m = case
    root = mth(LEAVES[:n])
    assert merkle.root_from(n, STORED) == root
    expected = path(m, LEAVES[:n])
    assert [merkle.range_hash(lo, hi, STORED) for lo, hi in merkle.inclusion_ranges(m, n)] == expected
    merkle.verify_inclusion(LEAVES[m], m, n, expected, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(LEAVES[(m + 1) % n] if n > 1 else b"x" * 32, m, n, expected, root)


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_consistency_proofs_follow_the_rfc(case: tuple[int, int]) -> None:
    m, n = case
    expected = [] if m == n else subproof(m, LEAVES[:n], True)
    got = [merkle.range_hash(lo, hi, STORED) for lo, hi in merkle.consistency_ranges(m, n)]
    assert got == expected
    merkle.verify_consistency(m, n, got, mth(LEAVES[:m]), mth(LEAVES[:n]))
    if m < n:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(m, n, got, mth(LEAVES[: m - 1]) if m > 1 else b"y" * 32, mth(LEAVES[:n]))
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(m, n, got[:-1], mth(LEAVES[:m]), mth(LEAVES[:n]))
