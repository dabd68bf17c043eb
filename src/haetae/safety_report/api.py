"""``GET /v1/reports/safety``: the financial safety report for a period (service keys with
scope ``reports``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from haetae.catalog import Locale
from haetae.deps import ServicesDep, require_scope
from haetae.safety_report.period import parse_period
from haetae.safety_report.render import Contacts
from haetae.safety_report.service import ReportFormat, make_report_async
from haetae.security.api_keys import Principal

router = APIRouter(prefix="/v1/reports", tags=["reports"])
ReportsPrincipal = Annotated[Principal, Depends(require_scope("reports"))]


@router.get(
    "/safety",
    response_class=Response,
    responses={
        200: {
            "description": "The report as HTML (default), PDF or JSON (the figures alone).",
            "content": {"text/html": {}, "application/pdf": {}, "application/json": {}},
        }
    },
)
async def safety_report(
    services: ServicesDep,
    _: ReportsPrincipal,
    period: Annotated[
        str,
        Query(
            max_length=20,
            description="A year (2026), a quarter (2026-Q1) or a month (2026-03), Seoul time",
        ),
    ],
    fmt: Annotated[ReportFormat, Query(alias="format")] = "html",
    locale: Annotated[Locale, Query()] = "ko",
) -> Response:
    """The financial safety report: the protection system, fraud trends, what was detected
    and prevented, reports handled and how fast, notices sent, the rules that caught most.
    Computed from the stored history when asked (a year over millions of decisions takes
    seconds; it runs on a connection of its own, off the event loop)."""
    report = await make_report_async(
        services.db.url,
        parse_period(period),
        fmt,
        locale,
        Contacts.from_settings(services.settings),
        now=services.clock(),
    )
    return Response(
        content=report.content,
        media_type=report.media_type,
        headers={"Content-Disposition": f'inline; filename="{report.filename}"'},
    )
