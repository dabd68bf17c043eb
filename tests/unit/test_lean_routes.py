"""Lean routes answer as FastAPI's own handlers would, and the busiest routes are lean."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import Response
from fastapi.routing import APIRoute

from haetae.app import create_app, install_error_handlers
from haetae.deps import require_scope
from haetae.lean_routes import LeanDispatch, LeanRoute
from haetae.payments.api import router as payments_router
from haetae.risk.api import router as risk_router
from haetae.services import Services
from tests.helpers import auth, merchant_key, payment_body, service_key

EVENT = {
    "kind": "transfer",
    "customer_id": "cust-1",
    "amount": 2_000_000,
    "payee": {"bank_code": "004", "account_number": "123-456-789"},
    "device": {"id": "dev-1", "ip": "203.0.113.7"},
    "occurred_at": "2026-12-07T10:00:00+09:00",
}


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://haetae.test")


def _fastapi_twin(services: Services) -> FastAPI:
    """The payments and risk routes as plain APIRoutes: FastAPI's own handlers."""
    app = FastAPI()
    app.state.services = services
    install_error_handlers(app)
    for lean in (payments_router, risk_router):
        router = APIRouter(prefix=lean.prefix)
        for route in lean.routes:
            assert isinstance(route, APIRoute)
            router.add_api_route(
                route.path[len(lean.prefix) :],
                route.endpoint,
                methods=list(route.methods),
                response_model=route.response_model,
                status_code=route.status_code,
            )
        app.include_router(router)
    return app


@pytest.fixture
async def clients(services: Services) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """(lean, FastAPI's), on the same services."""
    async with (
        _client(create_app(services.settings, services)) as lean,
        _client(_fastapi_twin(services)) as plain,
    ):
        yield lean, plain


def test_the_busiest_routes_are_lean() -> None:
    routes = [r for r in [*payments_router.routes, *risk_router.routes] if isinstance(r, LeanRoute)]
    assert len(routes) == len(payments_router.routes) + len(risk_router.routes) == 8
    assert all(route.lean for route in routes), [r.path for r in routes if not r.lean]


def test_a_route_with_an_unknown_dependency_keeps_fastapis_handler() -> None:
    async def other() -> int:
        return 1

    router = APIRouter(route_class=LeanRoute)

    @router.get("/x")
    async def endpoint(value: int = Depends(other)) -> dict[str, int]:
        return {"value": value}

    route = router.routes[0]
    assert isinstance(route, LeanRoute) and not route.lean


async def _both(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], method: str, url: str, **kwargs: Any
) -> tuple[httpx.Response, httpx.Response]:
    lean, plain = clients
    return await lean.request(method, url, **kwargs), await plain.request(method, url, **kwargs)


async def test_errors_are_the_same_as_fastapis(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], services: Services
) -> None:
    _, merchant = await merchant_key(services)
    risk = await service_key(services, "risk")
    no_scope = await service_key(services, "notify")
    too_long = "k" * 256
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/payments", {"json": payment_body()}),  # no key
        ("POST", "/v1/payments", {"json": payment_body(), "headers": auth("wrong")}),
        ("POST", "/v1/payments", {"json": payment_body(), "headers": {"Authorization": "Basic x"}}),
        ("POST", "/v1/risk/evaluate", {"json": EVENT, "headers": auth(no_scope)}),
        ("POST", "/v1/payments", {"json": {"amount": 1}, "headers": auth(merchant)}),
        (
            "POST",
            "/v1/payments",
            {"json": payment_body(card={"exp_month": "ab"}), "headers": auth(merchant)},
        ),
        (
            "POST",
            "/v1/payments",
            {
                "json": payment_body(amount="ten"),
                "headers": auth(merchant, **{"Accept-Language": "en"}),
            },
        ),
        (
            "POST",
            "/v1/payments",
            {"json": payment_body(), "headers": auth(merchant, **{"Idempotency-Key": too_long})},
        ),
        ("POST", "/v1/risk/evaluate", {"json": {**EVENT, "kind": "dance"}, "headers": auth(risk)}),
        ("GET", "/v1/risk/reviews?status=bogus", {"headers": auth(risk)}),
        ("GET", "/v1/risk/reviews?limit=0", {"headers": auth(risk)}),
        ("GET", "/v1/risk/decisions/rsk_missing", {"headers": auth(risk)}),
        ("GET", "/v1/payments/pay_missing", {"headers": auth(merchant)}),
        (
            "POST",
            "/v1/payments/pay_missing/challenge",
            {"json": {"otp": 12}, "headers": auth(merchant)},
        ),
    ]
    for method, url, kwargs in cases:
        lean, plain = await _both(clients, method, url, **kwargs)
        assert lean.status_code == plain.status_code, (method, url, lean.text, plain.text)
        assert lean.json() == plain.json(), (method, url)
        assert lean.status_code >= 400, (method, url, lean.text)


async def test_answers_are_the_same_as_fastapis(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], services: Services
) -> None:
    lean, plain = clients
    _, merchant = await merchant_key(services)
    declined = await lean.post(
        "/v1/payments",
        json=payment_body("4000000000009995"),
        headers=auth(merchant, **{"Accept-Language": "en"}),
    )
    assert declined.status_code == 402, declined.text
    assert declined.json()["error"]["message"].isascii()  # English, as asked
    english = auth(merchant, **{"Accept-Language": "en"})
    a, b = await _both(clients, "GET", f"/v1/payments/{declined.json()['id']}", headers=english)
    assert a.status_code == b.status_code == 200 and a.json() == b.json()
    assert a.headers["content-type"] == b.headers["content-type"] == "application/json"

    risk = await service_key(services, "risk")
    answers = [
        (await client.post("/v1/risk/evaluate", json=EVENT, headers=auth(risk))).json()
        for client in (lean, plain)
    ]
    assert answers[0].keys() == answers[1].keys() >= {"decision", "score", "reasons"}
    decision_id = answers[0]["decision_id"]
    for url in (f"/v1/risk/decisions/{decision_id}", "/v1/risk/reviews?status=open&limit=5"):
        a, b = await _both(clients, "GET", url, headers=auth(risk))
        assert a.status_code == b.status_code == 200 and a.json() == b.json()


async def test_a_lean_route_checks_the_key_before_reading_the_body(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    lean, plain = clients
    broken = {"content": b"{not json", "headers": {"Content-Type": "application/json"}}
    assert (await lean.post("/v1/payments", **broken)).status_code == 401
    assert (await plain.post("/v1/payments", **broken)).status_code == 422  # FastAPI's order


def _dispatch(app: Any) -> LeanDispatch:
    layer = app.middleware_stack
    while not isinstance(layer, LeanDispatch):
        layer = layer.app
    return layer


async def test_fixed_paths_are_served_before_fastapis_routing(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(services.settings, services)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    risk = await service_key(services, "risk")
    async with httpx.AsyncClient(transport=transport, base_url="http://haetae.test") as client:
        assert (await client.get("/healthz")).status_code == 200  # builds the stack
        dispatch = _dispatch(app)
        assert set(dispatch.paths) == {
            ("POST", "/v1/payments"),
            ("POST", "/v1/risk/evaluate"),
            ("GET", "/v1/risk/reviews"),
        }

        async def unreachable(*_: Any) -> None:
            raise AssertionError("reached FastAPI's routing")

        monkeypatch.setattr(dispatch, "app", unreachable)
        decided = await client.post("/v1/risk/evaluate", json=EVENT, headers=auth(risk))
        assert decided.status_code == 200 and decided.json()["decision"]
        refused = await client.post("/v1/risk/evaluate", json=EVENT)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        monkeypatch.undo()

        async def broken(*_: Any, **__: Any) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(services.risk, "evaluate", broken)
        failed = await client.post("/v1/risk/evaluate", json=EVENT, headers=auth(risk))
        assert failed.status_code == 500
        assert failed.json()["error"]["code"] == "internal_error"


async def test_a_route_level_dependency_is_checked_not_passed(services: Services) -> None:
    router = APIRouter(route_class=LeanRoute)

    @router.get("/checked", dependencies=[Depends(require_scope("admin"))])
    async def checked() -> Response:
        return Response(b"{}", media_type="application/json")

    route = router.routes[0]
    assert isinstance(route, LeanRoute) and route.lean
    app = FastAPI()
    app.state.services = services
    install_error_handlers(app)
    app.include_router(router)
    admin, risk = await service_key(services, "admin"), await service_key(services, "risk")
    async with _client(app) as client:
        assert (await client.get("/checked", headers=auth(admin))).status_code == 200
        refused = await client.get("/checked", headers=auth(risk))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
