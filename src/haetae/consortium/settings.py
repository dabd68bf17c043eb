"""What sharing with affiliates needs from the platform's settings: who we are, our signing
key, and each affiliate's address and public key."""

from __future__ import annotations

import base64
import contextlib
import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from haetae.config import Settings
from haetae.consortium.envelope import decode_private_key, decode_public_key, encode_key

KEY_FILE = "consortium.key"


@dataclass(frozen=True, slots=True)
class Peer:
    code: str
    url: str  # base URL of the affiliate's Haetae (no trailing slash)
    public_key: Ed25519PublicKey

    @property
    def messages_url(self) -> str:
        return f"{self.url}/v1/consortium/messages"


@dataclass(frozen=True, slots=True)
class ConsortiumSettings:
    institution_code: str
    private_key: Ed25519PrivateKey
    peers: dict[str, Peer] = field(default_factory=dict)
    # How far a received message's signed_at may be from our clock, either way.
    window: timedelta = timedelta(minutes=5)
    # The sender: messages claimed at once; how long a claim holds before another worker
    # may take the message over (its holder is taken to have died); retry delays.
    batch: int = 100
    lease: timedelta = timedelta(seconds=60)
    backoff_base: timedelta = timedelta(seconds=1)
    backoff_cap: timedelta = timedelta(minutes=10)
    connect_timeout_seconds: float = 5.0
    timeout_seconds: float = 15.0

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def public_key_b64(self) -> str:
        return encode_key(self.public_key)

    @property
    def keys(self) -> dict[str, Ed25519PublicKey]:
        return {code: peer.public_key for code, peer in self.peers.items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsortiumSettings:
        """Raises ValueError naming the setting when a key does not decode."""
        if settings.consortium_private_key:
            try:
                private_key = decode_private_key(settings.consortium_private_key)
            except ValueError as error:
                raise ValueError(f"HAETAE_CONSORTIUM_PRIVATE_KEY: {error}") from None
        else:
            private_key = load_or_create_key(settings.data_dir / KEY_FILE)
        peers: dict[str, Peer] = {}
        for configured in settings.consortium_peers:
            if configured.code == settings.institution_code:
                raise ValueError(f"HAETAE_CONSORTIUM_PEERS: {configured.code} is this institution")
            if configured.code in peers:
                raise ValueError(f"HAETAE_CONSORTIUM_PEERS: {configured.code} is listed twice")
            try:
                public_key = decode_public_key(configured.public_key)
            except ValueError as error:
                raise ValueError(
                    f"HAETAE_CONSORTIUM_PEERS: public_key of {configured.code}: {error}"
                ) from None
            peers[configured.code] = Peer(configured.code, configured.url.rstrip("/"), public_key)
        return cls(
            institution_code=settings.institution_code,
            private_key=private_key,
            peers=peers,
            window=timedelta(seconds=settings.consortium_max_age_seconds),
        )


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The seed stored at ``path`` (base64), generated there on first use, readable by the
    owner only. Two processes starting at once agree: the key is written whole to a file of
    its own and then linked into place, which fails if another process linked its key
    first; the loser reads the winner's."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(base64.b64encode(os.urandom(32)).decode())
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            draft.unlink()
    try:
        return decode_private_key(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
