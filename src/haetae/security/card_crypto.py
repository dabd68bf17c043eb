"""Card-data cryptography: keyed fingerprints, masking, and envelope encryption.

PCI DSS 3.5.1 wants a stored card number unreadable everywhere: we keep a keyed HMAC
(for lookups and velocity) and, only under the ``vault`` policy, AES-256-GCM ciphertext
under a data key that is itself wrapped by a master key kept outside the database (3.6/3.7:
key-encrypting keys separate from data keys).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from haetae.config import Settings


def mask_pan(pan: str) -> str:
    """First 6 and last 4 (PCI DSS 3.4.1); everything between as ``*``. Anything too short
    to be a card number is hidden whole (the issuer simulator logs whatever it receives)."""
    if len(pan) < 13:
        return "****"
    return f"{pan[:6]}{'*' * (len(pan) - 10)}{pan[-4:]}"


def master_key_path(settings: Settings) -> Path:
    return settings.data_dir / "keys" / "master.key"


def replace_key_file(path: Path, key: bytes) -> None:
    """Write the new key beside the old one, then rename over it (atomic on POSIX)."""
    staged = path.with_suffix(".new")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(key).decode())
        f.flush()
        os.fsync(f.fileno())
    staged.replace(path)


def _load_or_create(path: Path) -> bytes:
    if path.exists():
        return base64.b64decode(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    # Create with owner-only permissions from the first byte written.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(key).decode())
    return key


@dataclass(frozen=True)
class CardSecrets:
    fingerprint_key: bytes
    master_key: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> CardSecrets:
        keys_dir = settings.data_dir / "keys"
        fingerprint = (
            base64.b64decode(settings.fingerprint_key)
            if settings.fingerprint_key
            else _load_or_create(keys_dir / "fingerprint.key")
        )
        master = (
            base64.b64decode(settings.master_key)
            if settings.master_key
            else _load_or_create(master_key_path(settings))
        )
        if len(fingerprint) < 32 or len(master) != 32:
            raise ValueError("HAETAE_FINGERPRINT_KEY and HAETAE_MASTER_KEY: 32 bytes, base64")
        return cls(fingerprint_key=fingerprint, master_key=master)

    def with_master_key(self, master_key: bytes) -> CardSecrets:
        if len(master_key) != 32:
            raise ValueError("a master key is 32 bytes")
        return CardSecrets(fingerprint_key=self.fingerprint_key, master_key=master_key)

    def fingerprint(self, pan: str) -> str:
        return hmac.new(self.fingerprint_key, pan.encode(), hashlib.sha256).hexdigest()

    def derived_key(self, purpose: str) -> bytes:
        """A key of its own for each other keyed hash (step-up codes, request bodies), so
        that no value hashed for one purpose can be matched against another's."""
        return hmac.new(self.fingerprint_key, f"haetae:{purpose}".encode(), hashlib.sha256).digest()

    def encryption_key(self, purpose: str) -> bytes:
        """An AES-256 key of its own for each purpose, derived from the master key (HKDF),
        for data that is encrypted outside the vault (step-up cards waiting in Redis)."""
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=f"haetae:{purpose}".encode()
        ).derive(self.master_key)

    def wrap(self, data_key: bytes) -> bytes:
        return aes_key_wrap(self.master_key, data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        return aes_key_unwrap(self.master_key, wrapped)


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encrypt(data_key: bytes, plaintext: str, associated: str) -> bytes:
    """nonce (12 bytes) || ciphertext+tag; ``associated`` binds it to its token."""
    nonce = os.urandom(12)
    return nonce + AESGCM(data_key).encrypt(nonce, plaintext.encode(), associated.encode())


def decrypt(data_key: bytes, blob: bytes, associated: str) -> str:
    return AESGCM(data_key).decrypt(blob[:12], blob[12:], associated.encode()).decode()
