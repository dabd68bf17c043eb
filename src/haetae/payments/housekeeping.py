"""Finishing what an interrupted process left behind, on start-up and then periodically:
authorizations in flight when a process died, reversals still owed, step-ups whose time ran
out, and Idempotency-Keys past their retention."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime

import structlog

from haetae.background import BackgroundTask
from haetae.payments.idempotency import IdempotencyKeys
from haetae.payments.recovery import PaymentRecovery
from haetae.payments.reversals import ReversalWorker

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SweepReport:
    interrupted: int
    expired_challenges: int
    reversals_acknowledged: int
    idempotency_keys_purged: int


class PaymentHousekeeper:
    def __init__(
        self,
        recovery: PaymentRecovery,
        reversals: ReversalWorker,
        idempotency: IdempotencyKeys,
        *,
        clock: Callable[[], datetime],
        interval_seconds: float = 30.0,
    ) -> None:
        self._recovery = recovery
        self._reversals = reversals
        self._idempotency = idempotency
        self._clock = clock
        self._interval = interval_seconds
        self._task = BackgroundTask("payments-housekeeping", self._loop)

    async def run_once(self) -> SweepReport:
        report = SweepReport(
            interrupted=await self._step("interrupted", self._recovery.fail_interrupted),
            expired_challenges=await self._step("challenges", self._recovery.expire_challenges),
            reversals_acknowledged=await self._step("reversals", self._reversals.sweep),
            idempotency_keys_purged=await self._step(
                "idempotency", lambda: self._idempotency.purge_expired(self._clock())
            ),
        )
        counts = asdict(report)
        if any(counts.values()):
            log.info("payments.housekeeping", **counts)
        return report

    @staticmethod
    async def _step(name: str, work: Callable[[], Awaitable[int]]) -> int:
        """One step's failure is logged and does not keep the others from running."""
        try:
            return await work()
        except Exception as exc:
            log.error("payments.housekeeping_failed", step=name, error=repr(exc))
            return 0

    async def _loop(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
