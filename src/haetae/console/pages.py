"""What every console page shares: the templates, the page's language, rendering."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from haetae import __version__
from haetae.catalog import Locale, negotiate_locale

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

Labels = Mapping[Locale, Mapping[str, str]]


def page_locale(request: Request, lang: str | None) -> Locale:
    """``?lang=`` (the page's toggle) wins over the browser's ``Accept-Language``."""
    if lang in ("ko", "en"):
        return "en" if lang == "en" else "ko"
    return negotiate_locale(request.headers.get("accept-language"))


def render(
    request: Request,
    name: str,
    locale: Locale,
    labels: Labels,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page with its own labels as ``t``; never cached (pages may show customer data)."""
    return templates.TemplateResponse(
        request,
        name,
        {"locale": locale, "t": labels[locale], "version": __version__, **context},
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


# What every analyst page's header says: the console, the analyst pages, language, sign-out.
ANALYST_LABELS: Labels = {
    "ko": {
        "console_title": "해태 콘솔",
        "nav_label": "분석가 화면",
        "nav_certificates": "인증서 만료",
        "nav_rules": "위험 규칙",
        "nav_reviews": "검토 대기열",
        "nav_cases": "사기 사건",
        "logout": "로그아웃",
        "lang_label": "언어",
        "home": "콘솔",
    },
    "en": {
        "console_title": "Haetae console",
        "nav_label": "Analyst pages",
        "nav_certificates": "Certificates",
        "nav_rules": "Risk rules",
        "nav_reviews": "Review queue",
        "nav_cases": "Fraud cases",
        "logout": "Sign out",
        "lang_label": "Language",
        "home": "Console",
    },
}


def merge_labels(*parts: Labels) -> Labels:
    """One page's labels from shared sets and its own (a later part wins on a key)."""
    return {
        locale: {key: text for part in parts for key, text in part[locale].items()}
        for locale in ("ko", "en")
    }
