"""Health, metrics, OpenAPI, and the error shape for unknown routes."""

from __future__ import annotations

import gc

import httpx

from haetae.services import YOUNG_COLLECTION_THRESHOLD, Services, settle_heap
from tests.helpers import auth, merchant_key, payment_body


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


async def test_metrics_count_payments(client: httpx.AsyncClient, services: Services) -> None:
    _, key = await merchant_key(services)
    await client.post("/v1/payments", json=payment_body(), headers=auth(key))
    text = (await client.get("/metrics")).text
    assert 'haetae_payments_total{error_code="",status="approved"}' in text
    assert "haetae_issuer_request_seconds_bucket" in text


async def test_openapi_documents_the_payments_api(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/payments" in spec["paths"]
    assert "/v1/payments/{payment_id}/challenge" in spec["paths"]
    create = spec["paths"]["/v1/payments"]["post"]
    assert {"402", "409", "422", "503"} <= set(create["responses"])
    # the API key as bearer authentication, and the language of messages as a header
    schemes = spec["components"]["securitySchemes"]
    assert [s["scheme"] for s in schemes.values()] == ["bearer"]
    assert create["security"] == [{name: []} for name in schemes]
    assert "accept-language" in [p["name"].lower() for p in create["parameters"]]
    assert (await client.get("/docs")).status_code == 200


async def test_unknown_route_gets_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here", headers={"Accept-Language": "en"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_started_process_leaves_its_heap_to_reference_counting() -> None:
    """After start-up the heap is frozen and the young generation collected only every
    YOUNG_COLLECTION_THRESHOLD allocations, so that requests in flight die young instead of
    setting off full collections (bench/RESULTS.md)."""
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        kept = [[n] for n in range(1000)]  # start-up's long-lived objects
        settle_heap()
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() >= len(kept)
        collected = {id(o) for o in gc.get_objects()}  # every generation but the frozen
        assert not any(id(o) in collected for o in kept)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
