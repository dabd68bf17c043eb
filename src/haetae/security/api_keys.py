"""API keys: creation (secret shown once), verification with a short cache, scopes."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from haetae.db.base import new_id
from haetae.db.engine import Database
from haetae.security.models import ApiKey

Scope = Literal["payments", "risk", "certificates", "notify", "cases", "reports", "admin"]
ALL_SCOPES: tuple[Scope, ...] = get_args(Scope)
MERCHANT_SCOPES: tuple[Scope, ...] = ("payments",)
KEY_PREFIX = "hae"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a merchant (sees only its own data) or one of the bank's services."""

    key_id: str
    kind: Literal["merchant", "service"]
    name: str
    scopes: frozenset[str]
    merchant_id: str | None = None

    def allows(self, scope: Scope) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_api_key(
    session: AsyncSession,
    *,
    kind: Literal["merchant", "service"],
    name: str,
    scopes: list[str],
    merchant_id: str | None = None,
) -> str:
    """Store a new key and return its full text, ``hae_<key id>_<secret>``; only shown once."""
    unknown = set(scopes) - set(ALL_SCOPES)
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(sorted(unknown))}")
    key_id = new_id("key")
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiKey(
            id=key_id,
            kind=kind,
            name=name,
            merchant_id=merchant_id,
            scopes=sorted(set(scopes)),
            secret_hash=_hash(secret),
        )
    )
    await session.flush()
    return f"{KEY_PREFIX}_{key_id}_{secret}"


_TOKEN = re.compile(r"hae_(key_[0-9a-z]{26})_([A-Za-z0-9_-]{20,})")


def _split(token: str) -> tuple[str, str] | None:
    """``hae_<key id>_<secret>``; the secret may itself contain ``_``."""
    match = _TOKEN.fullmatch(token)
    return (match.group(1), match.group(2)) if match else None


class ApiKeyVerifier:
    """Checks bearer tokens. Verified keys are cached for ``ttl`` seconds so the hot path
    does not read the database on every request; a revoked key stops working within ttl."""

    def __init__(self, db: Database, ttl: float = 30.0) -> None:
        self._db = db
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def verify(self, token: str) -> Principal | None:
        token_hash = _hash(token)
        cached = self._cache.get(token_hash)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        parts = _split(token)
        if parts is None:
            return None
        key_id, secret = parts
        async with self._db.sessions() as session:
            row = await session.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_hash, _hash(secret)):
            return None
        principal = Principal(
            key_id=row.id,
            kind="merchant" if row.kind == "merchant" else "service",
            name=row.name,
            scopes=frozenset(row.scopes),
            merchant_id=row.merchant_id,
        )
        self._cache[token_hash] = (now + self._ttl, principal)
        return principal
