"""Fixtures for tests that need the notification channels' real receivers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from haetae.app import create_app
from haetae.config import Settings
from haetae.services import Services, build_services
from tests.conftest import Clock
from tests.receivers import SECRET, Receivers, running_receivers


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receivers, str, str]]:
    async with running_receivers() as running:
        yield running


@pytest.fixture
async def engine(
    settings: Settings, clock: Clock, receivers: tuple[Receivers, str, str]
) -> AsyncIterator[tuple[Services, httpx.AsyncClient, Receivers]]:
    """The platform with every channel pointed at the receivers. Background loops are not
    started: tests drive the dispatcher and the reminder worker themselves (drain)."""
    got, smtp_url, http_url = receivers
    configured = settings.model_copy(
        update={
            "smtp_url": smtp_url,
            "sms_provider_url": f"{http_url}/sms",
            "push_provider_url": f"{http_url}/push",
            "provider_secret": SECRET.decode(),
        }
    )
    services = build_services(configured, clock=clock)
    transport = httpx.ASGITransport(app=create_app(configured, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://haetae.test") as client:
        yield services, client, got
    await services.stop()
