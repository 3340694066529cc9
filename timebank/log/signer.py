"""Signing checkpoints, and refusing to sign one that rewrites what was signed before.

The signer is the log's first witness. It keeps the last checkpoint it signed in its checkpoint
directory (`.signer-state`, the signed note itself, so a forged state does not verify) and signs a
new (size, root) only when the database proves it consistent with that one (RFC 9162 §2.1.4), which
it checks itself: a database whose history was rewritten cannot obtain a signature.

Every checkpoint signed is also written to the directory as `checkpoint-<size>-<root prefix>` (the
directory is meant to be synced elsewhere; `timebank verify --checkpoints DIR` reads it back). An
exclusive lock on `.lock` orders signers of one directory (the CLI and a server).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from timebank.log import merkle
from timebank.log.note import Checkpoint, NoteError, Signer, open_checkpoint

STATE_FILE = ".signer-state"
LOCK_FILE = ".lock"


class SigningRefusedError(RuntimeError):
    """The checkpoint asked for is not consistent with the last one signed."""


def load_signer(path: str | os.PathLike[str]) -> Signer:
    """The note signer in a key file written by `timebank log keygen`."""
    return Signer.parse(Path(path).read_text(encoding="ascii"))


def checkpoint_file_name(checkpoint: Checkpoint) -> str:
    return f"checkpoint-{checkpoint.size:012d}-{checkpoint.root.hex()[:16]}"


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@dataclass
class CheckpointSigner:
    signer: Signer
    directory: Path

    @contextlib.asynccontextmanager
    async def locked(self, timeout_seconds: float = 30.0) -> AsyncIterator[None]:
        """Hold the directory's lock; polled without blocking, so the event loop never waits on it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / LOCK_FILE, "a") as lock:  # noqa: ASYNC230 -- a local, empty file.
            deadline = time.monotonic() + timeout_seconds
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise SigningRefusedError(f"another signer holds {self.directory / LOCK_FILE}") from None
                    await asyncio.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def last_signed(self) -> Checkpoint | None:
        """The last checkpoint this signer signed (call under `locked`)."""
        state = self.directory / STATE_FILE
        if not state.exists():
            return None
        try:
            return open_checkpoint(state.read_text(encoding="utf-8"), self.signer.verifier)
        except NoteError as exc:
            raise SigningRefusedError(f"{state} is not a checkpoint signed by this key: {exc}") from None

    def sign(self, size: int, root: bytes, proof: Sequence[bytes] | None, last: Checkpoint | None) -> str:
        """Sign (size, root), given a consistency proof from `last` (as last_signed() gave it).

        Call under `locked`. Refuses (SigningRefusedError) a size below the last one signed, another
        root for the same size, or a proof that does not verify.
        """
        if last is not None:
            if size < last.size:
                raise SigningRefusedError(
                    f"the log has {size} leaves but a checkpoint of {last.size} was signed: the log lost leaves"
                )
            try:
                merkle.verify_consistency(last.size, size, proof or [], last.root, root)
            except merkle.ProofError as exc:
                raise SigningRefusedError(
                    f"the tree of {size} leaves is not consistent with the checkpoint of {last.size} signed: {exc}"
                ) from None
        checkpoint = Checkpoint(self.signer.name, size, root)
        note = self.signer.sign(checkpoint.text())
        _write_atomically(self.directory / checkpoint_file_name(checkpoint), note)
        _write_atomically(self.directory / STATE_FILE, note)
        return note


def checkpoint_signer(key_file: str | None, checkpoint_dir: str | None) -> CheckpointSigner | None:
    """The configured signer (TIMEBANK_LOG_KEY_FILE, TIMEBANK_CHECKPOINT_DIR), or None without a key."""
    if not key_file:
        return None
    if not checkpoint_dir:
        raise SigningRefusedError("TIMEBANK_LOG_KEY_FILE is set: set TIMEBANK_CHECKPOINT_DIR too")
    try:
        signer = load_signer(key_file)
    except (OSError, NoteError) as exc:
        raise SigningRefusedError(f"TIMEBANK_LOG_KEY_FILE {key_file}: {exc}") from None
    return CheckpointSigner(signer, Path(checkpoint_dir))
