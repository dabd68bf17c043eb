"""The names every rule may use besides the features: the model's score and the event's own
fields, and where those live in an online event and in an offline event frame."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from haetae.risk.events import RiskEvent

ValueType = Literal["number", "bool", "string"]

EVENT_NAMES: Mapping[str, ValueType] = MappingProxyType(
    {
        "score": "number",  # the model's score, 0-100
        "amount": "number",  # minor units, as in the event
        "kind": "string",
        "currency": "string",
        "customer_id": "string",
        "card_id": "string",
        "terminal_id": "string",
        "device.id": "string",
        "device.ip": "string",
        "payee.bank_code": "string",
        "payee.account": "string",
    }
)

# The column of haetae.risk.events.EVENT_SCHEMA holding each event name, where it differs.
EVENT_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "device.id": "device_id",
        "device.ip": "ip",
        "payee.bank_code": "payee_bank",
        "payee.account": "payee_account",
    }
)


def event_values(event: RiskEvent, score: float | None = None) -> dict[str, object]:
    """The event's own names with their values (absent ones ``None``); the engine adds the
    features before evaluating rules."""
    return {
        "score": score,
        "amount": event.amount,
        "kind": event.kind,
        "currency": event.currency,
        "customer_id": event.customer_id,
        "card_id": event.card_id,
        "terminal_id": event.terminal_id,
        "device.id": event.device.id if event.device else None,
        "device.ip": event.device.ip if event.device else None,
        "payee.bank_code": event.payee.bank_code if event.payee else None,
        "payee.account": event.payee.account_number if event.payee else None,
    }
