"""Signed notes, note keys, checkpoints and offline proofs, as C2SP defines them.

- c2sp.org/signed-note (Ed25519, signature type 0x01): a note is UTF-8 text ending in a newline, a
  blank line, then one line per signature, `— <key name> <base64(key ID ‖ signature)>`. The key ID
  is the first 4 bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key). A verifier key is written
  `<name>+<hex key ID>+<base64(0x01 ‖ public key)>`; the private key file uses the same layout as
  golang.org/x/mod/sumdb/note, `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ seed)>`.
- c2sp.org/tlog-checkpoint: the note text is `<origin>\\n<tree size>\\n<base64 root hash>\\n`.
- c2sp.org/tlog-proof@v1: `c2sp.org/tlog-proof@v1`, optionally `extra <base64>`, `index <N>`, the
  inclusion path one base64 hash a line, a blank line, then the checkpoint verbatim.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
# A key name: no spaces of any kind and no "+" (signed-note); we also keep it printable.
KEY_NAME = re.compile(r"^[!-*,-~]{1,200}$")
DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,18})$")


class NoteError(ValueError):
    """A note, key, checkpoint or proof is malformed, or its signature does not verify."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise NoteError(f"{what} is not base64") from None


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public).digest()[:4]


def _check_name(name: str) -> None:
    if not KEY_NAME.match(name):
        raise NoteError("a key name is 1-200 printable ASCII characters without spaces or '+'")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    @classmethod
    def parse(cls, text: str) -> Verifier:
        parts = text.strip().split("+", 2)  # the base64 key may itself hold '+'
        if len(parts) != 3:
            raise NoteError("a verifier key is NAME+KEYID+BASE64")
        name, hex_id, encoded = parts
        _check_name(name)
        raw = _unb64(encoded, "the verifier key")
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("the verifier key is not an Ed25519 key")
        public = raw[1:]
        if hex_id != key_id(name, public).hex():
            raise NoteError("the verifier key's ID does not match its name and key")
        return cls(name, key_id(name, public), Ed25519PublicKey.from_public_bytes(public))

    def encode(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64(bytes([ED25519]) + _raw_public(self.public_key))}"


@dataclass(frozen=True)
class Signer:
    name: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, name: str) -> Signer:
        _check_name(name)
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, text: str) -> Signer:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signer key is PRIVATE+KEY+NAME+KEYID+BASE64")
        name, hex_id, encoded = parts[2:]
        _check_name(name)
        raw = _unb64(encoded, "the signer key")
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("the signer key is not an Ed25519 key")
        private = Ed25519PrivateKey.from_private_bytes(raw[1:])
        if hex_id != key_id(name, _raw_public(private.public_key())).hex():
            raise NoteError("the signer key's ID does not match its name and key")
        return cls(name, private)

    def encode(self) -> str:
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        public = _raw_public(self.private_key.public_key())
        return f"PRIVATE+KEY+{self.name}+{key_id(self.name, public).hex()}+{_b64(bytes([ED25519]) + seed)}"

    @property
    def verifier(self) -> Verifier:
        public = self.private_key.public_key()
        return Verifier(self.name, key_id(self.name, _raw_public(public)), public)

    def sign(self, text: str) -> str:
        """The signed note of `text` (which must end with a newline)."""
        if not text.endswith("\n") or "\n\n" in text:
            raise NoteError("note text must end with a newline and have no blank line")
        signature = self.private_key.sign(text.encode())
        return f"{text}\n{SIGNATURE_PREFIX}{self.name} {_b64(self.verifier.key_id + signature)}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The text of a signed note, once a signature by `verifier` checks; else NoteError."""
    text, sep, signatures = note.rpartition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise NoteError("not a signed note")
    text += "\n"
    found = False
    for line in signatures[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("a signature line must start with an em dash")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].rpartition(" ")
        if name != verifier.name:
            continue
        raw = _unb64(encoded, "a signature")
        if len(raw) != 68 or raw[:4] != verifier.key_id:
            continue
        try:
            verifier.public_key.verify(raw[4:], text.encode())
        except InvalidSignature:
            raise NoteError(f"the signature by {verifier.name} does not verify") from None
        found = True
    if not found:
        raise NoteError(f"the note has no signature by {verifier.name}")
    return text


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{_b64(self.root)}\n"

    @classmethod
    def parse_text(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or not lines[0] or not DECIMAL.match(lines[1]):
            raise NoteError("not a checkpoint: origin, tree size and root hash lines expected")
        root = _unb64(lines[2], "the root hash")
        if len(root) != 32:
            raise NoteError("the root hash is not 32 bytes")
        return cls(lines[0], int(lines[1]), root)


def open_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """The checkpoint of a signed note, once its signature and origin check."""
    checkpoint = Checkpoint.parse_text(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise NoteError(f"the checkpoint's origin {checkpoint.origin!r} is not the key's name {verifier.name!r}")
    return checkpoint


@dataclass(frozen=True)
class TlogProof:
    index: int
    path: list[bytes]
    checkpoint: str
    extra: bytes | None = None

    def encode(self) -> str:
        lines = [PROOF_HEADER]
        if self.extra is not None:
            lines.append(f"extra {_b64(self.extra)}")
        lines.append(f"index {self.index}")
        lines.extend(_b64(h) for h in self.path)
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def parse(cls, text: str) -> TlogProof:
        head, sep, checkpoint = text.partition("\n\n")
        if not sep:
            raise NoteError("not a tlog-proof: no blank line before the checkpoint")
        lines = head.split("\n")
        if lines[0] != PROOF_HEADER:
            raise NoteError(f"not a tlog-proof: the first line must be {PROOF_HEADER}")
        rest = lines[1:]
        extra = None
        if rest and rest[0].startswith("extra "):
            extra = _unb64(rest.pop(0)[len("extra ") :], "the extra data")
        if not rest or not rest[0].startswith("index ") or not DECIMAL.match(rest[0][len("index ") :]):
            raise NoteError("not a tlog-proof: `index N` expected")
        index = int(rest.pop(0)[len("index ") :])
        path = [_unb64(line, "an inclusion proof hash") for line in rest]
        if any(len(h) != 32 for h in path):
            raise NoteError("an inclusion proof hash is not 32 bytes")
        return cls(index, path, checkpoint, extra)
