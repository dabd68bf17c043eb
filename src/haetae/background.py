"""A long-running asyncio task the platform starts with the app and cancels at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


class BackgroundTask:
    """Runs ``body`` as one named task; :meth:`start` is idempotent, :meth:`stop` cancels it
    and waits for it to finish."""

    def __init__(self, name: str, body: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._name = name
        self._body = body
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._body(), name=self._name)

    async def stop(self) -> None:
        if self._task is None:
            return
        task, self._task = self._task, None
        task.cancel()
        # Waited for without awaiting it: its CancelledError is not ours to swallow, and a
        # stop that is itself cancelled (a shutdown's deadline) must raise, not return.
        await asyncio.wait([task])
        if not task.cancelled():
            task.result()  # what the body raised, if anything
