"""Making a report: read the figures, then render them as JSON, HTML or PDF.

The figures are read on a connection of the report's own, in a worker thread, not through
the application's async pool: a year of decisions is a long aggregate, and on SQLite the
application's single connection runs statements on the event loop itself, so a report read
through it would stall every payment for its whole length. The connection is read
only (``query_only`` on SQLite, a READ ONLY transaction on PostgreSQL) and takes one
snapshot (a deferred transaction on SQLite, REPEATABLE READ on PostgreSQL), so every figure
describes the same moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from haetae.catalog import Locale
from haetae.db.base import utcnow
from haetae.db.engine import is_sqlite, sync_url
from haetae.safety_report.metrics import collect
from haetae.safety_report.period import Period
from haetae.safety_report.render import Contacts, render_html, render_pdf
from haetae.safety_report.schemas import SafetyMetrics

ReportFormat = Literal["html", "pdf", "json"]
FORMATS: tuple[ReportFormat, ...] = ("html", "pdf", "json")
MEDIA_TYPES: dict[ReportFormat, str] = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "json": "application/json",
}
Step = Callable[[str], None]


@contextmanager
def snapshot(database_url: str) -> Iterator[Connection]:
    """A connection of its own on one consistent snapshot of the database."""
    sqlite = is_sqlite(database_url)
    engine = create_engine(sync_url(database_url), poolclass=NullPool)
    if sqlite:

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
            dbapi_connection.isolation_level = None  # we say BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.execute("PRAGMA query_only=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN DEFERRED")

    try:
        options: dict[str, Any] = (
            {} if sqlite else {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )
        with engine.connect().execution_options(**options) as conn, conn.begin():
            yield conn
    finally:
        engine.dispose()


def read_metrics(database_url: str, period: Period, *, now: datetime) -> SafetyMetrics:
    with snapshot(database_url) as conn:
        return collect(conn, period, now=now)


@dataclass(frozen=True, slots=True)
class RenderedReport:
    content: bytes
    media_type: str
    filename: str


def make_report(
    database_url: str,
    period: Period,
    fmt: ReportFormat,
    locale: Locale,
    contacts: Contacts,
    *,
    now: datetime | None = None,
    step: Step | None = None,
) -> RenderedReport:
    """The whole report, synchronously (the CLI and the API's worker thread call this);
    ``step`` hears of each phase as it starts."""
    tell = step or (lambda _phase: None)
    tell("metrics")
    metrics = read_metrics(database_url, period, now=now or utcnow())
    tell("render")
    if fmt == "json":
        content = metrics.model_dump_json(indent=2).encode()
    elif fmt == "html":
        content = render_html(metrics, locale, contacts).encode()
    else:
        content = render_pdf(metrics, locale, contacts)
    return RenderedReport(
        content=content,
        media_type=MEDIA_TYPES[fmt],
        filename=f"safety-report-{period.text}-{locale}.{fmt}",
    )


async def make_report_async(
    database_url: str,
    period: Period,
    fmt: ReportFormat,
    locale: Locale,
    contacts: Contacts,
    *,
    now: datetime | None = None,
) -> RenderedReport:
    """:func:`make_report` in a worker thread, so the event loop goes on serving."""
    return await asyncio.to_thread(
        make_report, database_url, period, fmt, locale, contacts, now=now
    )
