"""Merchants as the hot path reads them: a short cache over the table."""

from __future__ import annotations

import time

from haetae.db.engine import Database
from haetae.merchants.models import Merchant


class MerchantDirectory:
    """Reads a merchant at most once per ``ttl`` seconds per process; a changed policy or
    limit takes effect within that time (the same bound as API key revocation)."""

    def __init__(self, db: Database, ttl: float = 30.0) -> None:
        self._db = db
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Merchant]] = {}

    async def get(self, merchant_id: str) -> Merchant | None:
        now = time.monotonic()
        cached = self._cache.get(merchant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._db.sessions() as session:
            merchant = await session.get(Merchant, merchant_id)
        if merchant is not None:
            self._cache[merchant_id] = (now + self._ttl, merchant)
        return merchant
