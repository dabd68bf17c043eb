"""The rules API end to end on the real database: rules and their versions, lists, errors
that name the line and column, rules taking effect at once, and backtests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import polars as pl
import pytest

from haetae.risk.rules.history import FrameHistory
from haetae.risk.rules.names import ValueType
from haetae.risk.rules.service import RuleBook
from haetae.services import Services
from tests.helpers import auth, service_key

FEATURES: dict[str, ValueType] = {
    "payee.is_new": "bool",
    "hours_since_cert_reissue": "number",
    "device.distinct_cards_24h": "number",
}
BIG_NEW_PAYEE = "block if amount > 3_000_000 and payee.is_new and hours_since_cert_reissue < 24"
RISKY_TRANSFER = {
    "amount": 5_000_000,
    "payee.is_new": True,
    "hours_since_cert_reissue": 2,
    "payee.account": "110-123-456789",
}


@pytest.fixture
async def risk(services: Services, client: httpx.AsyncClient) -> dict[str, str]:
    """Headers of a key with the ``risk`` scope; the rule book knows the test's features."""
    services.rules.features = FEATURES
    return auth(await service_key(services, "risk"), **{"Accept-Language": "en"})


async def post_rule(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, rule: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        "/v1/risk/rules", json={"name": name, "rule": rule, **extra}, headers=headers
    )


def hits(services: Services, kind: str = "transfer", **values: object) -> list[str]:
    return [h.name for h in services.rules.evaluate(kind, {**RISKY_TRANSFER, **values})]


async def test_a_rule_is_created_versioned_and_takes_effect_at_once(
    services: Services, client: httpx.AsyncClient, risk: dict[str, str]
) -> None:
    assert hits(services) == []
    created = await post_rule(client, risk, "big-new-payee", BIG_NEW_PAYEE)
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in ("name", "version", "rule", "decision", "kinds", "enabled")} == {
        "name": "big-new-payee",
        "version": 1,
        "rule": BIG_NEW_PAYEE,
        "decision": "block",
        "kinds": None,
        "enabled": True,
    }
    assert hits(services) == ["big-new-payee"]
    assert services.rules.evaluate("transfer", RISKY_TRANSFER)[0].version == 1

    stricter = BIG_NEW_PAYEE.replace("3_000_000", "10_000_000")
    again = await post_rule(client, risk, "big-new-payee", stricter)
    assert again.status_code == 200
    assert (again.json()["version"], again.json()["rule"]) == (2, stricter)
    assert hits(services) == []  # 5,000,000 is no longer enough
    assert hits(services, amount=12_000_000) == ["big-new-payee"]

    same = await post_rule(client, risk, "big-new-payee", stricter)
    assert (same.status_code, same.json()["version"]) == (200, 2)

    detail = (await client.get("/v1/risk/rules/big-new-payee", headers=risk)).json()
    assert [(v["version"], v["rule"], v["created_by"]) for v in detail["versions"]] == [
        (2, stricter, "ops"),
        (1, BIG_NEW_PAYEE, "ops"),
    ]
    listed = (await client.get("/v1/risk/rules", headers=risk)).json()["rules"]
    assert [(r["name"], r["version"]) for r in listed] == [("big-new-payee", 2)]


async def test_disable_enable_and_kinds(
    services: Services, client: httpx.AsyncClient, risk: dict[str, str]
) -> None:
    await post_rule(client, risk, "score", "review if score >= 70")
    await post_rule(
        client, risk, "cards", "challenge if device.distinct_cards_24h >= 5", kinds=["payment"]
    )
    values = {"score": 80, "device.distinct_cards_24h": 7}
    assert hits(services, "payment", **values) == ["score", "cards"]
    assert hits(services, "transfer", **values) == ["score"]

    disabled = await client.post("/v1/risk/rules/score/disable", headers=risk)
    assert (disabled.status_code, disabled.json()["enabled"]) == (200, False)
    assert hits(services, "payment", **values) == ["cards"]
    enabled = await client.post("/v1/risk/rules/score/enable", headers=risk)
    assert enabled.json()["enabled"] is True
    assert hits(services, "payment", **values) == ["score", "cards"]

    # Posting again without kinds keeps them; kinds null means every kind again.
    kept = await post_rule(client, risk, "cards", "challenge if device.distinct_cards_24h >= 6")
    assert (kept.json()["kinds"], kept.json()["version"]) == (["payment"], 2)
    everywhere = await post_rule(
        client, risk, "cards", "challenge if device.distinct_cards_24h >= 6", kinds=None
    )
    assert (everywhere.json()["kinds"], everywhere.json()["version"]) == (None, 2)
    assert hits(services, "transfer", **values) == ["score", "cards"]
    off = await post_rule(client, risk, "new-off", "review if score > 1", enabled=False)
    assert (off.status_code, off.json()["enabled"]) == (201, False)
    assert "new-off" not in hits(services, "transfer", **values)

    for path in ("/v1/risk/rules/nope", "/v1/risk/rules/nope/disable"):
        method = client.get if path.endswith("nope") else client.post
        missing = await method(path, headers=risk)
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "rule_not_found")


async def test_named_lists(
    services: Services, client: httpx.AsyncClient, risk: dict[str, str]
) -> None:
    mule = "block if payee.account in @mule_accounts"
    early = await post_rule(client, risk, "mule", mule)
    assert early.status_code == 422
    assert early.json()["error"]["code"] == "rule_invalid"
    assert "line 1, column 27" in early.json()["error"]["message"]
    assert "no list named @mule_accounts" in early.json()["error"]["message"]

    put = await client.put(
        "/v1/risk/lists/mule_accounts",
        json={"values": ["110-000-000001", "110-000-000001"]},
        headers=risk,
    )
    assert put.status_code == 200, put.text
    assert (put.json()["values"], put.json()["count"]) == (["110-000-000001"], 1)
    assert (await post_rule(client, risk, "mule", mule)).status_code == 201
    assert hits(services) == []
    await client.put(
        "/v1/risk/lists/mule_accounts",
        json={"values": ["110-123-456789", "110-000-000001"]},
        headers=risk,
    )
    assert hits(services) == ["mule"]  # the list's new values apply at once
    got = (await client.get("/v1/risk/lists/mule_accounts", headers=risk)).json()
    assert got["values"] == ["110-000-000001", "110-123-456789"]
    summaries = (await client.get("/v1/risk/lists", headers=risk)).json()["lists"]
    assert [(s["name"], s["count"]) for s in summaries] == [("mule_accounts", 2)]

    await client.put("/v1/risk/lists/mule_accounts", json={"values": []}, headers=risk)
    assert hits(services) == []
    missing = await client.get("/v1/risk/lists/other", headers=risk)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "risk_list_not_found")
    bad_name = await client.put("/v1/risk/lists/no-dashes", json={"values": []}, headers=risk)
    assert (bad_name.status_code, bad_name.json()["error"]["field"]) == (422, "name")


@pytest.mark.parametrize(
    ("rule", "where", "says"),
    [
        (
            "block if amount > 1\n  and payee.is_neww",
            "line 2, column 7",
            "did you mean 'payee.is_new'?",
        ),
        ("block if amount > 1 and\n   payee.is_new > 5", "line 2, column 4", "> compares numbers"),
        ("block if amount => 1", "line 1, column 17", "unexpected character '='"),
        ("block if __import__('os').system('id')", "line 1, column 20", "unexpected '('"),
    ],
)
async def test_an_invalid_rule_is_422_naming_line_and_column(
    services: Services,
    client: httpx.AsyncClient,
    risk: dict[str, str],
    rule: str,
    where: str,
    says: str,
) -> None:
    response = await post_rule(client, risk, "bad", rule)
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("rule_invalid", "rule")
    assert where in error["message"] and says in error["message"], error["message"]
    korean = await post_rule(client, {**risk, "Accept-Language": "ko"}, "bad", rule)
    line, column = (int(p.split()[-1]) for p in where.split(", "))
    assert f"{line}행 {column}열" in korean.json()["error"]["message"]
    assert (await client.get("/v1/risk/rules/bad", headers=risk)).status_code == 404


async def test_malformed_requests(client: httpx.AsyncClient, risk: dict[str, str]) -> None:
    cases = [
        ({"name": "has space", "rule": "review if score > 1"}, "name"),
        ({"name": "x", "rule": ""}, "rule"),
        ({"name": "x", "rule": "review if score > 1", "kinds": ["teleport"]}, "kinds.0"),
        ({"name": "x", "rule": "review if score > 1", "kinds": []}, "kinds"),
        ({"name": "x", "rule": "review if score > 1", "priority": 1}, "priority"),
    ]
    for body, field in cases:
        response = await client.post("/v1/risk/rules", json=body, headers=risk)
        assert (response.status_code, response.json()["error"]["field"]) == (422, field), body


async def test_keys_need_the_risk_scope(services: Services, client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/v1/risk/rules")
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthorized")
    other = auth(await service_key(services, "certificates"))
    for method, path in (
        ("GET", "/v1/risk/rules"),
        ("POST", "/v1/risk/rules"),
        ("POST", "/v1/risk/rules/backtest"),
        ("PUT", "/v1/risk/lists/x"),
        ("GET", "/v1/risk/lists/x"),
    ):
        response = await client.request(method, path, headers=other, json={})
        assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden"), path


async def test_another_process_picks_changes_up_by_polling(
    services: Services, client: httpx.AsyncClient, risk: dict[str, str]
) -> None:
    other = RuleBook(services.db, clock=services.clock, features=FEATURES, poll_seconds=0)
    assert (await other.current()).evaluate("transfer", RISKY_TRANSFER) == []
    await post_rule(client, risk, "big-new-payee", BIG_NEW_PAYEE)
    assert [h.name for h in (await other.current()).evaluate("transfer", RISKY_TRANSFER)] == [
        "big-new-payee"
    ]
    await client.post("/v1/risk/rules/big-new-payee/disable", headers=risk)
    assert (await other.current()).evaluate("transfer", RISKY_TRANSFER) == []
    lazy = RuleBook(services.db, clock=services.clock, features=FEATURES, poll_seconds=3600)
    await lazy.current()
    await client.post("/v1/risk/rules/big-new-payee/enable", headers=risk)
    assert (await lazy.current()).evaluate("transfer", RISKY_TRANSFER) == []  # not yet
    assert len((await lazy.reload()).evaluate("transfer", RISKY_TRANSFER)) == 1


async def test_list_additions_apply_in_memory_unless_something_else_changed(
    services: Services, client: httpx.AsyncClient, risk: dict[str, str]
) -> None:
    """extend_lists adds a committed transaction's list values without a reload when the
    change counter moved by exactly that transaction's touches; when another process changed
    rules meanwhile, it reloads, so that change is in force too."""
    from haetae.risk.rules import repository

    async def add(account: str) -> None:
        async with services.db.transaction() as session:
            await repository.add_to_list(session, "mule_accounts", [account], services.clock())

    await add("330-000-000000")
    mules = "block if payee.account in @mule_accounts"
    assert (await post_rule(client, risk, "mules", mules)).status_code == 201
    book = RuleBook(services.db, clock=services.clock, features=FEATURES, poll_seconds=3600)
    await book.reload()
    assert book.evaluate("transfer", RISKY_TRANSFER) == []

    await add("110-123-456789")
    rules = await book.extend_lists({"mule_accounts": {"110-123-456789"}}, touches=1)
    assert [h.name for h in rules.evaluate("transfer", RISKY_TRANSFER)] == ["mules"]
    async with services.db.sessions() as session:
        assert rules.stamp == await repository.stamp(session)
        assert rules.lists == await repository.all_list_values(session)

    # Another process saves a rule; this book has not polled. The next addition reloads.
    assert (await post_rule(client, risk, "big-new-payee", BIG_NEW_PAYEE)).status_code == 201
    await add("220-000-000001")
    rules = await book.extend_lists({"mule_accounts": {"220-000-000001"}}, touches=1)
    assert {h.name for h in rules.evaluate("transfer", RISKY_TRANSFER)} == {
        "mules",
        "big-new-payee",
    }
    assert "220-000-000001" in rules.lists["mule_accounts"]


async def test_concurrent_saves_of_one_rule_get_distinct_versions(
    client: httpx.AsyncClient, risk: dict[str, str]
) -> None:
    responses = await asyncio.gather(
        *(post_rule(client, risk, "racy", f"review if score > {n}") for n in range(5))
    )
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 201]
    assert sorted(r.json()["version"] for r in responses) == [1, 2, 3, 4, 5]
    detail = (await client.get("/v1/risk/rules/racy", headers=risk)).json()
    assert [v["version"] for v in detail["versions"]] == [5, 4, 3, 2, 1]


def labelled_history() -> pl.DataFrame:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(1, 7)],
            "kind": ["transfer", "transfer", "transfer", "transfer", "payment", "login"],
            "occurred_at": [at.replace(day=d) for d in range(1, 7)],
            "amount": [5_000_000, 4_000_000, 3_500_000, 100_000, 9_000_000, 0],
            "currency": ["KRW"] * 6,
            "payee_account": ["m1", "p2", "p3", "p4", None, None],
            "label": [1, 0, 1, 1, 0, 0],
            "payee.is_new": [True, True, True, True, None, None],
            "hours_since_cert_reissue": [2.0, None, 30.0, 1.0, None, None],
        },
        schema_overrides={"label": pl.Int8, "occurred_at": pl.Datetime("us", "UTC")},
    )


async def test_backtest_reports_hits_fraud_false_positives_and_money(
    services: Services, client: httpx.AsyncClient, risk: dict[str, str]
) -> None:
    unavailable = await client.post(
        "/v1/risk/rules/backtest", json={"rule": BIG_NEW_PAYEE}, headers=risk
    )
    assert (unavailable.status_code, unavailable.json()["error"]["code"]) == (
        503,
        "backtest_unavailable",
    )

    services.rules.history = FrameHistory(labelled_history())
    rule = "block if amount > 3_000_000 and payee.is_new"
    response = await client.post("/v1/risk/rules/backtest", json={"rule": rule}, headers=risk)
    assert response.status_code == 200, response.text
    result = response.json()
    assert {
        k: result[k] for k in ("events", "hits", "fraud_caught", "false_positives", "fraud_total")
    } == {
        "events": 6,
        "hits": 3,  # e1, e2, e3 (e5 has no payee)
        "fraud_caught": 2,
        "false_positives": 1,
        "fraud_total": 3,
    }
    assert result["amount_at_stake"] == 12_500_000
    assert result["amount_caught"] == 8_500_000
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["by_currency"] == {
        "KRW": {"amount_at_stake": 12_500_000, "amount_caught": 8_500_000}
    }

    narrowed = await client.post(
        "/v1/risk/rules/backtest",
        json={
            "rule": BIG_NEW_PAYEE,
            "kinds": ["transfer"],
            "since": "2026-11-01T00:00:00Z",
            "until": "2026-11-03T00:00:00+00:00",
        },
        headers=risk,
    )
    assert {k: narrowed.json()[k] for k in ("events", "hits", "fraud_caught", "fraud_total")} == {
        "events": 2,
        "hits": 1,
        "fraud_caught": 1,
        "fraud_total": 1,
    }

    await client.put("/v1/risk/lists/mule_accounts", json={"values": ["m1", "p2"]}, headers=risk)
    listed = await client.post(
        "/v1/risk/rules/backtest",
        json={"rule": "block if payee.account in @mule_accounts"},
        headers=risk,
    )
    assert (listed.json()["hits"], listed.json()["fraud_caught"]) == (2, 1)

    invalid = await client.post(
        "/v1/risk/rules/backtest", json={"rule": "block if amout > 1"}, headers=risk
    )
    assert invalid.status_code == 422
    assert "line 1, column 10" in invalid.json()["error"]["message"]
    backwards = await client.post(
        "/v1/risk/rules/backtest",
        json={"rule": rule, "since": "2026-11-03T00:00:00Z", "until": "2026-11-01T00:00:00Z"},
        headers=risk,
    )
    assert (backwards.status_code, backwards.json()["error"]["field"]) == (422, "until")
    assert (await client.get("/v1/risk/rules", headers=risk)).json()["rules"] == []  # nothing saved


async def test_concurrent_replacements_of_a_new_list_leave_one_of_them(
    client: httpx.AsyncClient, risk: dict[str, str]
) -> None:
    contents = [[f"v{n}-{i}" for i in range(n + 1)] for n in range(4)]
    responses = await asyncio.gather(
        *(
            client.put("/v1/risk/lists/racy", json={"values": values}, headers=risk)
            for values in contents
        )
    )
    assert [r.status_code for r in responses] == [200] * 4
    final = (await client.get("/v1/risk/lists/racy", headers=risk)).json()["values"]
    assert final in [sorted(values) for values in contents]
