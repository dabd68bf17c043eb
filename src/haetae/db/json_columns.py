"""How JSON columns are written and read: orjson, with the standard library as fallback.

Payments, decisions and outbox events each write several JSON columns (a decision's feature
values, the idempotent response, the event payload); through the json module their
encoding was about 4% of a payment's and of a fraud decision's CPU (bench/RESULTS.md).
orjson does the same in a fraction of that. The differences do not reach what we store:
keys that are not strings are turned into strings as json does; what orjson refuses
(integers beyond 64 bits, older rows holding NaN) goes through the json module; NaN and
infinities, which are not JSON (PostgreSQL refuses them), are written as null.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value)


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
