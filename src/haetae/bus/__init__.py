"""The event spine: events written to the outbox with state, relayed to a bus."""

from haetae.bus.base import Bus, Event, Handler
from haetae.bus.memory import InProcessBus
from haetae.bus.outbox import OutboxRelay, add_event, consume_once

__all__ = ["Bus", "Event", "Handler", "InProcessBus", "OutboxRelay", "add_event", "consume_once"]
