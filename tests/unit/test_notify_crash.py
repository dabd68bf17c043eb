"""Nothing lost: a dispatcher process killed (SIGKILL) in the middle of a batch, then
started again, gets every notice to its receiver, and the receiver sees each one once
(repeats of what was in flight at the kill carry the same Idempotency-Key and are dropped)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import func, select

from haetae.config import Settings
from haetae.notify.dispatcher import DispatchSettings
from haetae.notify.models import Customer, Delivery
from haetae.notify.notices import send_notice
from haetae.services import build_services

NOTICES = 300
SECRET = "crash-secret"


class Receiver:
    def __init__(self) -> None:
        self.received: list[str] = []
        self.accepted: set[str] = set()
        self.changed = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers["Idempotency-Key"]
        async with self.changed:
            self.received.append(key)
            self.changed.notify_all()
        await asyncio.sleep(0.02)  # a provider that takes a moment: batches are in flight
        async with self.changed:
            self.accepted.add(key)  # a repeat of a key already accepted changes nothing
            self.changed.notify_all()
        return web.json_response({"message_id": key})

    async def until(self, condition: Callable[[], bool]) -> None:
        async with self.changed:
            await self.changed.wait_for(condition)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    got = Receiver()
    app = web.Application()
    app.router.add_post("/sms", got.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield got, f"http://127.0.0.1:{port}/sms"
    await runner.cleanup()


def _start_worker(settings: Settings, provider_url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HAETAE_DATABASE_URL": settings.effective_database_url,
        "HAETAE_DATA_DIR": str(tmp_path / "worker"),
        "HAETAE_SMS_PROVIDER_URL": provider_url,
        "HAETAE_PROVIDER_SECRET": SECRET,
        "HAETAE_NOTIFY_LEASE_SECONDS": "1",
        "HAETAE_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "haetae.cli", "notify-worker"],
        env=env,
        stdout=subprocess.PIPE,  # its logs (warnings and errors only: a few lines)
        stderr=subprocess.PIPE,
    )


async def test_a_killed_dispatcher_loses_nothing_and_repeats_nothing(
    settings: Settings,
    receiver: tuple[Receiver, str],
    tmp_path: Path,
) -> None:
    got, url = receiver
    writer = build_services(settings)  # not started: only the worker processes dispatch
    async with writer.db.transaction() as session:
        session.add(Customer(id="c-1", phone="01012345678", locale="ko"))
    async with writer.db.transaction() as session:
        for n in range(NOTICES):
            await send_notice(
                session,
                writer.templates,
                customer_id="c-1",
                kind="fraud_report_received",
                category="security",
                context={
                    "case_id": f"case-{n}",
                    "received_at": writer.clock(),
                    "contact_phone": "1599-0000",
                },
                now=writer.clock(),
                channels=("sms",),
            )
    async with writer.db.sessions() as session:
        ids = set((await session.scalars(select(Delivery.id))).all())
    assert len(ids) == NOTICES

    first = _start_worker(settings, url, tmp_path)
    try:
        # Killed once some sends were answered: deliveries are then done, recorded or not,
        # in flight and not yet sent, all at once.
        async with asyncio.timeout(60):
            await got.until(lambda: len(got.accepted) >= NOTICES // 5)
    finally:
        first.send_signal(signal.SIGKILL)  # mid-batch: some sends are in flight
        first.communicate(timeout=10)
    at_kill = len(got.accepted)
    assert 0 < at_kill < NOTICES, "the kill must land in the middle of the work"

    second = _start_worker(settings, url, tmp_path)
    try:
        async with asyncio.timeout(60):
            await got.until(lambda: len(got.accepted) == NOTICES)
        await asyncio.sleep(0.5)  # the last status updates land after the receiver answers
        async with writer.db.sessions() as session:
            pending = await session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.status.not_in(["sent", "delivered"]))
            )
    finally:
        second.send_signal(signal.SIGTERM)
        logs, _ = second.communicate(timeout=10)
        await writer.stop()
    assert got.accepted == ids  # every notice reached the receiver
    assert pending == 0
    # A worker only sends: it loads no fraud model, so it warns of none missing.
    assert b"risk.no_model" not in logs, logs.decode()
    repeats = len(got.received) - len(got.accepted)
    # Only what was sent and not yet recorded at the kill: at most one send per worker slot.
    assert repeats <= DispatchSettings().concurrency
