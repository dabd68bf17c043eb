"""Rate limits kept in the real Redis: two API processes share one key's count.
Unreachable Redis fails the run."""

from __future__ import annotations

import os
import uuid

import pytest

from haetae.errors import HaetaeError
from haetae.security.api_keys import Principal
from haetae.security.rate_limits import RateLimits, RateLimitSettings

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("HAETAE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def test_two_processes_share_a_keys_count_in_redis() -> None:
    settings = RateLimitSettings(merchant="4/minute", storage=f"async+{REDIS_URL}")
    one, other = RateLimits(settings), RateLimits(settings)  # as two API processes
    merchant = Principal(
        key_id=f"key_test{uuid.uuid4().hex[:20]}", kind="merchant", name="shop", scopes=frozenset()
    )
    try:
        for limits in (one, other, one, other):
            await limits.admit_key(merchant)
    except Exception as error:
        pytest.fail(f"Redis unreachable or refused at {REDIS_URL}: {error!r}")
    with pytest.raises(HaetaeError) as refused:
        await one.admit_key(merchant)  # the fifth in the minute, counted by both
    assert refused.value.code == "rate_limited"
    assert refused.value.headers is not None and int(refused.value.headers["Retry-After"]) >= 1
