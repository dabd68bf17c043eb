"""Typed FastAPI dependencies shared by every domain's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from haetae.catalog import Locale, negotiate_locale
from haetae.errors import HaetaeError
from haetae.security.api_keys import Principal, Scope
from haetae.services import Services


# Dependencies are async even where they never await: FastAPI runs a plain ``def``
# dependency in a thread pool, which cost ~3% of a payment's CPU (bench/RESULTS.md).
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_locale(accept_language: Annotated[str | None, Header()] = None) -> Locale:
    """Korean unless the caller asks for English (documented on every route)."""
    return negotiate_locale(accept_language)


LocaleDep = Annotated[Locale, Depends(get_locale)]


# Read by FastAPI's own scheme, which the OpenAPI document shows as bearer authentication
# (cheaper per request than a validated header parameter).
_BEARER = HTTPBearer(auto_error=False, description="An API key from `haetae keys create`")


async def authenticate(request: Request, services: Services, token: str) -> Principal:
    """The caller's key, within its rate limit; a client that keeps sending wrong keys is
    refused before its next one is even checked. Shared by FastAPI's dependency below and
    the lean routes (:mod:`haetae.lean_routes`)."""
    address = request.client.host if request.client else "unknown"
    await services.rate_limits.admit_client(address)
    principal = await services.api_keys.verify(token) if token else None
    if principal is None:
        await services.rate_limits.count_failure(address)
        raise HaetaeError("unauthorized", field="Authorization")
    await services.rate_limits.admit_key(principal)
    return principal


def bearer_token(authorization: str | None) -> str:
    """The key of an ``Authorization: Bearer KEY`` header, as FastAPI's scheme reads it."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def get_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Principal:
    token = credentials.credentials.strip() if credentials else ""
    return await authenticate(request, services, token)


def check_scope(principal: Principal, scope: Scope) -> Principal:
    if not principal.allows(scope):
        raise HaetaeError("forbidden", params={"scope": scope})
    return principal


class ScopeCheck:
    """A dependency: the caller's key, which must allow ``scope`` (lean routes read it)."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        return check_scope(principal, self.scope)


def require_scope(scope: Scope) -> ScopeCheck:
    return ScopeCheck(scope)
