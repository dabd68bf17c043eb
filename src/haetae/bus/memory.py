"""In-process bus: the embedded default, delivery by direct await."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from haetae.bus.base import Event, Handler

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Subscription:
    pattern: str
    consumer: str
    handler: Handler

    def matches(self, topic: str) -> bool:
        if self.pattern.endswith("*"):
            return topic.startswith(self.pattern[:-1])
        return topic == self.pattern


class InProcessBus:
    """Awaits every matching handler. A handler that raises makes ``publish`` raise, so the
    outbox keeps the event and sends it again; handlers that already succeeded see it twice
    and drop it by event id (:func:`haetae.bus.outbox.consume_once`)."""

    def __init__(self) -> None:
        self._subscriptions: list[_Subscription] = []

    def subscribe(self, pattern: str, consumer: str, handler: Handler) -> None:
        self._subscriptions.append(_Subscription(pattern, consumer, handler))

    async def publish(self, event: Event) -> None:
        failures: list[BaseException] = []
        for subscription in self._subscriptions:
            if not subscription.matches(event.topic):
                continue
            try:
                await subscription.handler(event)
            except Exception as exc:
                log.warning(
                    "bus.handler_failed",
                    consumer=subscription.consumer,
                    topic=event.topic,
                    event_id=event.id,
                    error=repr(exc),
                )
                failures.append(exc)
        if failures:
            raise failures[0]

    async def close(self) -> None:
        self._subscriptions.clear()
