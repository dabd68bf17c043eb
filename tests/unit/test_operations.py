"""Health, metrics, OpenAPI, and the error shape for unknown routes."""

from __future__ import annotations

import httpx

from haetae.services import Services
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
    assert {"402", "409", "422", "503"} <= set(spec["paths"]["/v1/payments"]["post"]["responses"])
    assert (await client.get("/docs")).status_code == 200


async def test_unknown_route_gets_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here", headers={"Accept-Language": "en"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
