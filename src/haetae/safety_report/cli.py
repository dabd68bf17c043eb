"""``haetae report safety``: the financial safety report as a file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from haetae.config import Settings

if TYPE_CHECKING:
    from haetae.catalog import Locale
    from haetae.safety_report.service import ReportFormat

report_app = typer.Typer(help="Reports computed from the stored history.", no_args_is_help=True)
console = Console(stderr=True)
PHASES = {
    "metrics": "reading the stored history",
    "render": "drawing the charts and the pages",
}


@report_app.command("safety")
def report_command(
    period: Annotated[
        str, typer.Option(help="A year (2026), a quarter (2026-Q1) or a month (2026-03)")
    ],
    fmt: Annotated[str, typer.Option("--format", help="html, pdf or json")] = "html",
    locale: Annotated[str, typer.Option(help="ko or en")] = "ko",
    output: Annotated[
        Path | None,
        typer.Option(help="File to write (default: DATA_DIR/reports/safety-report-…)"),
    ] = None,
) -> None:
    """Write the financial safety report for a period; prints the file's path."""
    from haetae.db.migrate import upgrade
    from haetae.errors import HaetaeError
    from haetae.safety_report.period import parse_period
    from haetae.safety_report.render import Contacts
    from haetae.safety_report.service import FORMATS, make_report

    if fmt not in FORMATS:
        raise typer.BadParameter("must be html, pdf or json", param_hint="--format")
    if locale not in ("ko", "en"):
        raise typer.BadParameter("must be ko or en", param_hint="--locale")
    try:
        parsed = parse_period(period)
    except HaetaeError:
        raise typer.BadParameter(
            "give a year (2026), a quarter (2026-Q1) or a month (2026-03)", param_hint="--period"
        ) from None
    chosen: ReportFormat = next(f for f in FORMATS if f == fmt)
    language: Locale = "en" if locale == "en" else "ko"
    settings = Settings()
    upgrade(settings.effective_database_url)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("starting", total=None)
        report = make_report(
            settings.effective_database_url,
            parsed,
            chosen,
            language,
            Contacts.from_settings(settings),
            step=lambda phase: progress.update(task, description=PHASES.get(phase, phase)),
        )
    path = output or settings.data_dir / "reports" / report.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(report.content)
    console.print(
        f"{parsed.text} safety report ({chosen}, {language}): {len(report.content):,} bytes"
    )
    typer.echo(str(path))
