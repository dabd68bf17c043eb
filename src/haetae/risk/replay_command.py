"""``haetae risk replay``: what the model and rules in force would decide over a history."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from haetae.risk.model.command import Currency, MapOption, phase_progress, read_history

if TYPE_CHECKING:
    import polars as pl

    from haetae.config import Settings
    from haetae.risk.rules.ruleset import RuleSet


def register(risk_app: typer.Typer, settings: Callable[[], Settings]) -> None:
    @risk_app.command("replay")
    def replay_command(
        data: Annotated[
            Path, typer.Option("--data", help="Events to replay: a .csv or .parquet file")
        ],
        out: Annotated[
            Path | None, typer.Option(help="Parquet file for every event's decision")
        ] = None,
        mapping: MapOption = None,
        currency: Currency = "KRW",
        model: Annotated[str, typer.Option(help="Model version in the models directory")] = (
            "latest"
        ),
    ) -> None:
        """Decide every event of a history with the rules in force and a model, in batch,
        as the engine would have decided them one by one from an empty feature store
        (nothing is stored). Before switching a new model or rule set on: how many events
        would it block, send to review, challenge?"""
        from haetae.risk.features import FEATURE_NAMES
        from haetae.risk.model.registry import RegistryError
        from haetae.risk.model.scorer import Scorer
        from haetae.risk.replay import DECISION, replay

        console = Console(stderr=True)
        current = settings()
        with phase_progress(console) as phase:
            events = read_history(data, mapping, currency, phase)
            phase("load the model and the rules in force")
            try:
                scorer = Scorer.load(current.effective_models_dir, model, FEATURE_NAMES)
            except (FileNotFoundError, RegistryError) as error:
                raise typer.BadParameter(str(error), param_hint="--model") from error
            rules = asyncio.run(_rules_in_force(current))
            phase(f"replay {events.height:,} events")
            decided = replay(events, scorer=scorer, rules=rules)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            decided.write_parquet(out)
            console.print(f"wrote {decided.height:,} decisions to {out}")
        Console().print(_summary(decided, DECISION, scorer.version, len(rules.rules)))


async def _rules_in_force(settings: Settings) -> RuleSet:
    from haetae.db.base import utcnow
    from haetae.db.engine import Database
    from haetae.risk.features.definitions import feature_types
    from haetae.risk.rules.service import RuleBook

    db = Database(settings.effective_database_url)
    try:
        return await RuleBook(db, clock=utcnow, features=feature_types()).reload()
    finally:
        await db.dispose()


def _summary(decided: pl.DataFrame, column: str, model: str, rules: int) -> Table:
    import polars as pl

    counts = dict(decided.group_by(column).len().iter_rows())
    table = Table(title=f"{decided.height:,} events, model {model}, {rules} rule(s)")
    table.add_column("decision")
    table.add_column("events", justify="right")
    table.add_column("share", justify="right")
    table.add_column("amount (minor units)", justify="right")
    amounts = dict(decided.group_by(column).agg(pl.col("amount").sum()).iter_rows())
    for decision in ("block", "review", "challenge", "allow"):
        n = counts.get(decision, 0)
        share = n / decided.height if decided.height else 0.0
        table.add_row(decision, f"{n:,}", f"{share:.2%}", f"{amounts.get(decision) or 0:,}")
    return table
