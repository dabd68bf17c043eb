"""Who may open the console pages that show customer data (docs/adr/0004).

Each area of such pages states the API key scope it needs (:data:`CERTIFICATES`,
:data:`RISK`). Demo mode on loopback: anyone at the machine (the demo's own customers only
exist there). Otherwise: a service API key with the area's scope (``admin`` allows all),
given once on the login form and kept in an HttpOnly, SameSite=Strict cookie scoped to
``/console``; it is checked on every request like a bearer key, so a revoked key stops
working within the key cache's ttl.

Forms that change something also pass :func:`same_origin`: a POST whose ``Origin`` names
another host is refused, on top of the cookie's SameSite=Strict.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from haetae.catalog import Locale
from haetae.console.pages import Labels, page_locale, render
from haetae.deps import ServicesDep
from haetae.errors import HaetaeError
from haetae.security.api_keys import Scope
from haetae.services import Services

COOKIE = "haetae_console_key"
COOKIE_PATH = "/console"
# A working day: the key is not left in a browser for longer than a shift needs it.
COOKIE_MAX_AGE = 8 * 60 * 60
LOGIN_PATH = "/console/login"
# Who labelled a decision when the demo opened the page without a key.
DEMO_USER = "console demo"


@dataclass(frozen=True, slots=True)
class Area:
    """The console pages under ``prefix``, open to keys with ``scope``."""

    prefix: str
    scope: Scope

    def holds(self, path: str) -> bool:
        return path == self.prefix or path.startswith(f"{self.prefix}/")


CERTIFICATES = Area("/console/certificates", "certificates")
RISK = Area("/console/risk", "risk")
CASES = Area("/console/cases", "cases")
FRAUD_REPORTS = Area("/console/fraud-reports", "cases")
AREAS: tuple[Area, ...] = (CERTIFICATES, RISK, CASES, FRAUD_REPORTS)


def _same_origin(request: Request) -> bool:
    """No ``Origin`` (older browsers, same-origin GET-to-POST by some) passes; one naming
    another host, or ``null``, does not. The scheme is not compared: a TLS-terminating
    proxy may speak plain HTTP to the app."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


async def same_origin(request: Request) -> None:
    """A dependency for console POSTs that change state: refuse cross-site forms."""
    if not _same_origin(request):
        raise HTTPException(403, detail="cross-site form refused")


router = APIRouter(include_in_schema=False)
SameOrigin = Depends(same_origin)

LABELS: Labels = {
    "ko": {
        "console_title": "해태 콘솔",
        "page_title": "콘솔 로그인",
        "intro": "고객 정보가 있는 화면입니다. {scope} 권한이 있는 서비스 API 키를 "
        "입력해 주세요. 키는 이 브라우저의 보안 쿠키에 8시간 동안만 보관됩니다.",
        "key": "서비스 API 키",
        "submit": "로그인",
        "logout": "로그아웃",
        "lang_label": "언어",
        "home": "콘솔",
    },
    "en": {
        "console_title": "Haetae console",
        "page_title": "Console sign-in",
        "intro": "This page shows customer data. Enter a service API key with the "
        "{scope} scope. It is kept in a secure cookie in this browser for 8 hours only.",
        "key": "Service API key",
        "submit": "Sign in",
        "logout": "Sign out",
        "lang_label": "Language",
        "home": "Console",
    },
}


async def require_demo(services: ServicesDep) -> None:
    """The keyless demo pages exist only when the platform runs in demo mode
    (``haetae serve --demo``)."""
    if not services.settings.demo:
        raise HaetaeError("not_found")


def from_loopback(request: Request) -> bool:
    # Behind a reverse proxy uvicorn puts the forwarded client address here.
    if request.client is None:
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


async def console_user(request: Request, services: Services, area: Area) -> str | None:
    """Who is at a page of ``area``: the signed-in key's name, :data:`DEMO_USER` for the
    demo on loopback, or None (then the page sends the browser to the login)."""
    key = request.cookies.get(COOKIE)
    principal = await services.api_keys.verify(key.strip()) if key else None
    if principal is not None and principal.allows(area.scope):
        return principal.name
    if services.settings.demo and from_loopback(request):
        return DEMO_USER
    return None


async def may_read_customer_data(request: Request, services: Services, area: Area) -> bool:
    return await console_user(request, services, area) is not None


def _scopes(target: str) -> tuple[Scope, ...]:
    """The scope the login asks for: the target page's; any area's for another page."""
    for area in AREAS:
        if area.holds(target):
            return (area.scope,)
    return tuple(area.scope for area in AREAS)


async def _key_problem(
    services: Services, key: str, scopes: tuple[Scope, ...]
) -> HaetaeError | None:
    """None for a key that may open a page needing one of ``scopes``, else why not."""
    principal = await services.api_keys.verify(key.strip()) if key.strip() else None
    if principal is None:
        return HaetaeError("unauthorized")
    if not any(principal.allows(scope) for scope in scopes):
        return HaetaeError("forbidden", params={"scope": " / ".join(scopes)})
    return None


def _safe_next(target: str | None) -> str:
    """Only back to a console page: never an open redirect to another site."""
    if target and target.startswith(f"{COOKIE_PATH}/") and "//" not in target:
        return target
    return "/"


def login_redirect(request: Request, locale: Locale, page: str | None = None) -> RedirectResponse:
    """To the login, then back to ``page`` (default: the page asked for)."""
    query = urlencode({"next": page or request.url.path, "lang": locale})
    return RedirectResponse(f"{LOGIN_PATH}?{query}", status_code=303)


def _login_form(
    request: Request, locale: Locale, target: str, error: str | None, status_code: int = 200
) -> HTMLResponse:
    return render(
        request,
        "login.html",
        locale,
        LABELS,
        status_code=status_code,
        next=target,
        scope=" / ".join(_scopes(target)),
        error=error,
    )


@router.get(LOGIN_PATH, response_class=HTMLResponse)
async def login_page(
    request: Request,
    next_page: Annotated[str | None, Query(alias="next")] = None,
    lang: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    return _login_form(request, page_locale(request, lang), _safe_next(next_page), None)


@router.post(LOGIN_PATH, response_class=HTMLResponse, dependencies=[SameOrigin])
async def login(
    request: Request,
    services: ServicesDep,
    key: Annotated[str, Form(max_length=300)],
    next_page: Annotated[str, Form(alias="next", max_length=300)] = "/",
    lang: Annotated[str | None, Form()] = None,
) -> Response:
    locale = page_locale(request, lang)
    target = _safe_next(next_page)
    problem = await _key_problem(services, key, _scopes(target))
    if problem is not None:
        rendered = services.catalog.render_error(problem.code, locale, params=problem.params)
        status = services.catalog.entry(problem.code).status
        return _login_form(request, locale, target, rendered.message, status)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        key.strip(),
        max_age=COOKIE_MAX_AGE,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/console/logout", dependencies=[SameOrigin])
async def logout() -> RedirectResponse:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response
