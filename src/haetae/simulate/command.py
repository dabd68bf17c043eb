"""``haetae simulate``: write a labelled event history to Parquet."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from haetae.simulate.run import Profile

if TYPE_CHECKING:
    from haetae.simulate.writer import Summary


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)


def simulate(
    out: Annotated[
        Path | None,
        typer.Option(
            help="Parquet file, or a folder for events.parquet",
            show_default="DATA_DIR/simulated/events.parquet",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same history")] = 42,
    profile: Annotated[
        Profile,
        typer.Option(
            help="handbook: card payments as in the Fraud Detection Handbook; korean: a Korean "
            "bank's logins, transfers, certificates and key-in payments; all: both"
        ),
    ] = Profile.ALL,
    customers: Annotated[
        int | None,
        typer.Option(min=1, help="Customers in each profile", show_default="5000"),
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(min=1, help="Days simulated", show_default="handbook 183, korean 90"),
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="First day", show_default="2018-04-01"),
    ] = None,
) -> None:
    """Simulate customers' payments, transfers, logins and certificate reissues, genuine and
    fraudulent (labelled), and write them as one Parquet history."""
    import time

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from haetae.simulate.run import phases
    from haetae.simulate.run import simulate as run_simulation
    from haetae.simulate.writer import summarize, write_events

    if out is None:
        from haetae.config import Settings

        out = Settings().data_dir / "simulated" / "events.parquet"
    steps = [*phases(profile), "writing Parquet"]
    began = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as progress:
        task = progress.add_task(steps[0], total=len(steps))

        def advance(_: str) -> None:
            done = int(progress.tasks[task].completed) + 1
            progress.update(task, completed=done, description=steps[min(done, len(steps) - 1)])

        events = run_simulation(
            profile,
            seed=seed,
            customers=customers,
            days=days,
            start=start.date() if start else None,
            on_phase=advance,
        )
        written = write_events(events, out)
        advance("written")
    summary = summarize(events)
    console = Console()
    console.print(_summary_table(summary))
    console.print(
        f"{summary.events:,} events, {summary.frauds:,} fraudulent "
        f"({summary.fraud_rate:.3%}) in {time.perf_counter() - began:.1f} s → {written}"
    )


def _summary_table(summary: Summary) -> Table:
    table = Table(title="Simulated events")
    table.add_column("kind or fraud scenario")
    table.add_column("events", justify="right")
    table.add_column("share", justify="right")
    for kind, count in summary.by_kind.items():
        table.add_row(kind, f"{count:,}", f"{count / summary.events:.2%}")
    table.add_section()
    for scenario, count in summary.by_scenario.items():
        table.add_row(f"fraud: {scenario}", f"{count:,}", f"{count / summary.events:.3%}")
    table.add_section()
    table.add_row("fraud, all scenarios", f"{summary.frauds:,}", f"{summary.fraud_rate:.3%}")
    return table
