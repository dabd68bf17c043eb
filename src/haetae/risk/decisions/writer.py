"""Group commit for decisions: every caller waits until its decision is committed, and the
callers that arrive while one commit runs share the next one.

A decision is answered only once it is stored (the review queue and the audit trail must not
lose one), but one transaction per decision would cap throughput at the database's commit
rate; sharing commits keeps each answer durable at a fraction of the cost under load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from haetae.db.buffered import RowBuffer
from haetae.db.engine import Database

# A write buffers rows (``db.buffered``): decisions and their outbox events, nothing read back.
Write = Callable[[RowBuffer], Any]


class GroupCommitWriter:
    def __init__(self, db: Database, *, max_batch: int = 500) -> None:
        self._db = db
        self._max_batch = max_batch
        self._pending: list[tuple[Write, asyncio.Future[None]]] = []
        self._running: asyncio.Task[None] | None = None
        self.transactions = 0  # committed so far (diagnostics: decisions per commit)

    async def write(self, work: Write) -> None:
        """Run ``work(rows)`` for a shared transaction; returns once it has committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((work, done))
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            rows = RowBuffer()
            written: list[asyncio.Future[None]] = []
            for work, done in batch:
                own = RowBuffer()
                try:
                    work(own)
                except Exception as error:  # only this caller's rows are left out
                    if not done.done():
                        done.set_exception(error)
                    continue
                rows.absorb(own)
                written.append(done)
            try:
                await self._db.write_buffered(rows)
            except Exception as error:  # every caller in the transaction hears of it
                for done in written:
                    if not done.done():
                        done.set_exception(error)
                continue
            self.transactions += 1
            for done in written:
                if not done.done():
                    done.set_result(None)
