"""JSON columns are encoded by orjson, with the json module for what orjson refuses."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

from sqlalchemy import select

from haetae.bus.models import OutboxEvent
from haetae.bus.outbox import add_event
from haetae.db import json_columns
from haetae.db.engine import Database
from haetae.db.migrate import upgrade


def test_what_json_reads_back_equals_what_was_written() -> None:
    value = {"reasons": ["새 기기", "new device"], "score": 71.25, "flags": [], "n": None}
    assert json.loads(json_columns.dumps(value)) == value
    assert json_columns.loads(json_columns.dumps(value)) == value
    assert json_columns.loads(json.dumps(value)) == value


def test_what_orjson_refuses_or_changes_is_still_written() -> None:
    assert json.loads(json_columns.dumps({1: "a"})) == {"1": "a"}  # as json turns keys
    assert json.loads(json_columns.dumps({"big": 2**70})) == {"big": 2**70}
    assert json.loads(json_columns.dumps({"x": math.nan})) == {"x": None}  # NaN is not JSON
    assert math.isnan(json_columns.loads('{"x": NaN}')["x"])  # rows the json module wrote


async def test_the_database_writes_json_columns_with_it(tmp_path: Path) -> None:
    path = tmp_path / "json.db"
    upgrade(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}")
    try:
        async with db.transaction() as session:
            add_event(session, "test.written", {"message": "새 기기", "count": 2})
        async with db.sessions() as session:
            payload = await session.scalar(select(OutboxEvent.payload))
    finally:
        await db.dispose()
    assert payload == {"message": "새 기기", "count": 2}
    stored = sqlite3.connect(path)
    try:
        (raw,) = stored.execute("SELECT payload FROM outbox_events").fetchone()
    finally:
        stored.close()
    assert raw == '{"message":"새 기기","count":2}'  # orjson's (json.dumps escapes the Korean)


def test_an_idempotent_request_hashes_as_canonical_json_module_output() -> None:
    """Stored request hashes must not change with the encoder: orjson's bytes are the json
    module's canonical ones (sorted keys, compact, UTF-8), and what orjson refuses goes
    through the json module."""
    import hashlib
    import hmac

    from haetae.payments.idempotency import request_fingerprint

    key = b"k" * 32
    bodies = [
        {"order_id": '주문-1\u2028\x00\x1f\x7f"\\/', "amount": 1000, "card": {"b": None, "a": 1}},
        {"amount": 2**70, "currency": "KRW"},  # beyond 64 bits: orjson refuses it
        {"z": [True, False, None, -1, 0.5], "a": {}},
    ]
    for body in bodies:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        expected = hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()
        assert request_fingerprint(key, body) == expected
