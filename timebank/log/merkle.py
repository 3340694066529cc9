"""Merkle tree hashing, proofs and their verification, as RFC 6962 §2.1 and RFC 9162 §2.1 define them.

The tree is never held whole. Every complete subtree's hash is stored once, named by (level, index):
level 0 holds the leaf hashes, level k the hash of leaves [index·2^k, (index+1)·2^k). Any range the
RFC's recursions touch ([lo, hi) with lo a multiple of a power of two at least hi − lo) is the
concatenation of at most 64 complete subtrees, whose hashes folded from the right give the range's
hash. So a root, an inclusion proof or a consistency proof costs one read of at most a few hundred
stored hashes, whatever the tree's size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

Node = tuple[int, int]  # (level, index)
Range = tuple[int, int]  # [lo, hi)

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 MTH of one entry: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtrees(lo: int, hi: int) -> list[Node]:
    """The complete subtrees that make up [lo, hi), left to right (largest aligned first)."""
    nodes: list[Node] = []
    while lo < hi:
        level = (lo & -lo).bit_length() - 1 if lo else 63
        while (1 << level) > hi - lo:
            level -= 1
        nodes.append((level, lo >> level))
        lo += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from its complete subtrees' hashes (left to right), as MTH computes it."""
    result = hashes[-1]
    for h in reversed(hashes[:-1]):
        result = node_hash(h, result)
    return result


def range_hash(lo: int, hi: int, stored: Mapping[Node, bytes]) -> bytes:
    return fold([stored[node] for node in subtrees(lo, hi)])


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose hashes form RFC 6962 PATH(index, D[0:size]), leaf's sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    ranges: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The ranges whose hashes form RFC 6962 PROOF(first, D[0:second]), deepest first."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from size {first} to {second}")
    if first in (0, second):
        return []
    ranges: list[Range] = []
    lo, hi, m, whole = 0, second, first, True
    while True:
        n = hi - lo
        if m == n:
            if not whole:
                ranges.append((lo, hi))
            break
        k = _split(n)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    ranges.reverse()
    return ranges


def nodes_for(ranges: Iterable[Range]) -> set[Node]:
    return {node for lo, hi in ranges for node in subtrees(lo, hi)}


def root_nodes(size: int) -> list[Node]:
    return subtrees(0, size)


def root_from(size: int, stored: Mapping[Node, bytes]) -> bytes:
    return EMPTY_ROOT if size == 0 else range_hash(0, size, stored)


def new_nodes(old_size: int, new_size: int) -> list[Node]:
    """The complete subtrees that appending leaves old_size..new_size-1 completes (levels ≥ 1)."""
    nodes: list[Node] = []
    level = 1
    while (new_size >> level) > 0:
        nodes.extend((level, index) for index in range(old_size >> level, new_size >> level))
        level += 1
    return nodes


def append(old_size: int, leaves: Sequence[bytes], stored: Callable[[Node], bytes]) -> dict[Node, bytes]:
    """The hashes of every complete subtree the new leaves complete, leaves included (level 0).

    `stored` gives the hash of an existing complete subtree (only those on the old tree's right edge
    are asked for).
    """
    made: dict[Node, bytes] = {(0, old_size + i): h for i, h in enumerate(leaves)}

    def get(node: Node) -> bytes:
        return made[node] if node in made else stored(node)

    for level, index in new_nodes(old_size, old_size + len(leaves)):
        made[(level, index)] = node_hash(get((level - 1, 2 * index)), get((level - 1, 2 * index + 1)))
    return made


def frontier(size: int) -> list[Node]:
    """The stored subtrees that appending to a tree of `size` leaves may need: its root's parts."""
    return root_nodes(size)


class ProofError(ValueError):
    """A proof does not verify."""


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2: raise ProofError unless `path` proves leaf hash `leaf` at `index` in `root`."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ProofError("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is too short")
    if r != root:
        raise ProofError("the inclusion proof leads to another root")


def verify_consistency(  # noqa: PLR0912 -- RFC 9162's algorithm, step by step.
    first: int, second: int, path: Sequence[bytes], first_root: bytes, second_root: bytes
) -> None:
    """RFC 9162 §2.1.4.2: raise ProofError unless `path` proves tree `second` extends tree `first`."""
    if not 0 <= first <= second:
        raise ProofError(f"size {first} cannot precede size {second}")
    if first == 0:
        if path:
            raise ProofError("a proof from the empty tree is empty")
        return
    if first == second:
        if path:
            raise ProofError("a proof between equal sizes is empty")
        if first_root != second_root:
            raise ProofError("two different roots for one tree size")
        return
    if not path:
        raise ProofError("the consistency proof is empty")
    nodes = list(path)
    if first & (first - 1) == 0:
        nodes.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is too short")
    if fr != first_root:
        raise ProofError("the consistency proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("the consistency proof does not lead to the second root")
