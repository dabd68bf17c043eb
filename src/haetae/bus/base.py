"""The bus port: what every adapter (in-process, NATS JetStream) provides."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Event:
    """A fact that happened. ``id`` is stable across redeliveries: consumers dedupe on it."""

    id: str
    topic: str
    payload: dict[str, Any]
    occurred_at: datetime


Handler = Callable[[Event], Awaitable[None]]


class Bus(Protocol):
    async def publish(self, event: Event) -> None:
        """Deliver to every subscriber; raise if any could not take it (it will be resent)."""

    def subscribe(self, pattern: str, consumer: str, handler: Handler) -> None:
        """``pattern`` is a topic or a prefix ending in ``*`` (``payment.*``)."""

    async def close(self) -> None: ...
