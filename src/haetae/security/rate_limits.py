"""Rate limits: requests per API key, and failed authentications per client address.

A leaked merchant key must not be able to try thousands of stolen cards a second (card
testing), and a client guessing keys must be slowed to a crawl. The counting is the
``limits`` library's sliding-window counter; the counters live in this process by default,
or in Redis when ``HAETAE_RATE_LIMIT_STORAGE`` names one (``async+redis://host:6379``), so
that several API processes share them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import NoReturn

from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from haetae.errors import HaetaeError
from haetae.security.api_keys import Principal

# Addresses with a recent failure, kept before old ones are swept out (a guesser rotating
# through many addresses); the limiter keeps its own counters for each of them anyway.
_REMEMBERED_ADDRESSES = 100_000


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    merchant: str = "200/second"  # a merchant's checkout, per key
    service: str = "5000/second"  # the bank's own systems, per key
    failed_auth: str = "30/minute"  # wrong or unknown keys, per client address
    # (an empty text: no limit)
    storage: str = "async+memory://"


def _limits(text: str, setting: str) -> list[RateLimitItem]:
    try:
        return parse_many(text) if text.strip() else []
    except ValueError as error:
        example = "e.g. '200/second' or '10/second;500/minute'; empty for none"
        raise ValueError(f"{setting}: {error} ({example})") from None


class RateLimits:
    def __init__(self, settings: RateLimitSettings = RateLimitSettings()) -> None:
        # limits talks to Redis through coredis unless told otherwise; we ship redis-py.
        options = {"implementation": "redispy"} if "redis" in settings.storage else {}
        storage = storage_from_string(settings.storage, **options)
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._per_kind = {
            "merchant": _limits(settings.merchant, "HAETAE_RATE_LIMIT_MERCHANT"),
            "service": _limits(settings.service, "HAETAE_RATE_LIMIT_SERVICE"),
        }
        self._failed_auth = _limits(settings.failed_auth, "HAETAE_RATE_LIMIT_FAILED_AUTH")
        # With the counters in this process, an address that never failed here has nothing
        # to test: its check is skipped (a sliding-window test is a few percent of a
        # payment's CPU). A failure counts for up to two windows, the current and the last.
        self._local = settings.storage.startswith("async+memory")
        self._failure_memory = 2 * max(
            (limit.get_expiry() for limit in self._failed_auth), default=0
        )
        self._last_failure: dict[str, float] = {}
        # Until then every address is tested: set when more addresses failed lately than
        # are remembered (many addresses guessing at once), instead of sweeping on each.
        self._test_all_until = 0.0

    async def admit_key(self, principal: Principal) -> None:
        """Count a request of ``principal``'s key; a 429 once any of its limits is spent."""
        for limit in self._per_kind[principal.kind]:
            if not await self._limiter.hit(limit, "key", principal.key_id):
                await self._refuse(limit, "key", principal.key_id)

    async def admit_client(self, address: str) -> None:
        """Before checking a key: a 429 for a client whose failed attempts are spent."""
        if self._local and not self._failed_lately(address):
            return
        for limit in self._failed_auth:
            if not await self._limiter.test(limit, "auth", address):
                await self._refuse(limit, "auth", address)

    async def count_failure(self, address: str) -> None:
        if self._local:
            now = time.monotonic()
            if len(self._last_failure) >= _REMEMBERED_ADDRESSES:
                self._forget_old_failures(now)
            self._last_failure[address] = now
        for limit in self._failed_auth:
            await self._limiter.hit(limit, "auth", address)

    def _failed_lately(self, address: str) -> bool:
        now = time.monotonic()
        if now < self._test_all_until:
            return True
        last = self._last_failure.get(address)
        if last is None:
            return False
        if now - last < self._failure_memory:
            return True
        del self._last_failure[address]
        return False

    def _forget_old_failures(self, now: float) -> None:
        cutoff = now - self._failure_memory
        for address, last in list(self._last_failure.items()):
            if last < cutoff:
                del self._last_failure[address]
        if len(self._last_failure) >= _REMEMBERED_ADDRESSES // 2:
            # Too many recent ones to keep sweeping: forget them all, and test every
            # address until the failures they stand for have left their windows.
            self._last_failure.clear()
            self._test_all_until = now + self._failure_memory

    async def _refuse(self, limit: RateLimitItem, *identifiers: str) -> NoReturn:
        stats = await self._limiter.get_window_stats(limit, *identifiers)
        seconds = max(1, math.ceil(stats.reset_time - time.time()))
        raise HaetaeError(
            "rate_limited",
            params={"limit": str(limit), "retry_after": seconds},
            headers={"Retry-After": str(seconds)},
        )
