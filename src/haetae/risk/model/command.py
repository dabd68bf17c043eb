"""``haetae train`` and ``haetae evaluate``.

Both follow the handbook's protocol (train, delay, test). ``evaluate`` prints only the test
metrics, as JSON, on stdout; progress and everything else go to stderr. Heavy libraries are
imported inside the commands so the CLI starts fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    import polars as pl

    from haetae.risk.model.builder import FeatureBuilder
    from haetae.risk.model.pipeline import Evaluation, Phase
    from haetae.risk.model.protocol import Split
    from haetae.risk.model.train import TrainParams

SIMULATED_HISTORY = Path("simulated") / "events.parquet"  # under the data directory

Data = Annotated[Path, typer.Option("--data", help="Labelled history: a .csv or .parquet file")]
MapOption = Annotated[
    str | None,
    typer.Option(
        "--map",
        help="Our column=the file's column, comma-separated: transaction_id, timestamp, "
        "amount, label, customer_id, card_id, terminal_id, currency, ...",
    ),
]
Currency = Annotated[
    str, typer.Option(help="Currency of decimal amounts when no currency column is mapped")
]
TrainStart = Annotated[
    str | None,
    typer.Option(help="First training day, YYYY-MM-DD (default: the test period ends the data)"),
]
TrainDays = Annotated[int, typer.Option(min=1, help="Days of training")]
DelayDays = Annotated[int, typer.Option(min=0, help="Days between training and test")]
TestDays = Annotated[int, typer.Option(min=1, help="Days of test")]
Threads = Annotated[int, typer.Option(min=1, help="LightGBM threads")]
Seed = Annotated[int, typer.Option(help="Random seed (same seed, same model)")]


def default_builder() -> FeatureBuilder:
    # Until haetae.risk.features lands: the handbook's baseline features.
    from haetae.risk.model.handbook_baseline import HandbookBaseline

    return HandbookBaseline()


def register(app: typer.Typer, builder: Callable[[], FeatureBuilder] = default_builder) -> None:
    """Add ``train`` and ``evaluate`` to ``app``, computing features with ``builder()``."""

    @app.command("train")
    def train(
        data: Annotated[
            Path | None,
            typer.Option(
                "--data",
                help="Labelled history, .csv or .parquet "
                f"(default: the simulator's, <data dir>/{SIMULATED_HISTORY.as_posix()})",
            ),
        ] = None,
        mapping: MapOption = None,
        currency: Currency = "USD",
        train_start: TrainStart = None,
        train_days: TrainDays = 7,
        delay_days: DelayDays = 7,
        test_days: TestDays = 7,
        out: Annotated[
            Path | None, typer.Option(help="Models directory (default: <data dir>/models)")
        ] = None,
        threads: Threads = 2,
        seed: Seed = 7,
    ) -> None:
        """Train the fraud model, test it with the handbook's protocol and save it."""
        from rich.table import Table

        from haetae.config import Settings
        from haetae.risk.model import registry

        console = Console(stderr=True)
        data_dir = Settings().data_dir
        source = data or data_dir / SIMULATED_HISTORY
        if data is None and not source.is_file():
            raise typer.BadParameter(
                f"no simulated history at {source}: run `haetae simulate` first",
                param_hint="--data",
            )
        models_dir = out or data_dir / "models"
        features = builder()
        with phase_progress(console) as phase:
            events = read_history(source, mapping, currency, phase)
            split = _split(events, train_start, train_days, delay_days, test_days)
            result = _evaluate(events, features, split, _params(seed, threads), phase)
            phase("save")
            stored = registry.save(
                result.model,
                models_dir,
                metrics={
                    **result.metrics.as_dict(),
                    "test_rows": result.test_rows,
                    "test_frauds": result.test_frauds,
                },
                meta={
                    "data": str(source),
                    "mapping": mapping,
                    "currency": currency,
                    "protocol": split.as_dict(),
                    "feature_builder": type(features).__name__,
                },
            )
        table = Table("metric", "test", title=f"model {stored.version}")
        for name, value in result.metrics.as_dict().items():
            table.add_row(name, f"{value:.3f}")
        console.print(table)
        console.print(
            f"trained {split.train_start}..{split.train_end} (end excluded), tested "
            f"{split.test_start}..{split.test_end} on {result.test_rows} events "
            f"({result.test_frauds} frauds); saved to {stored.path}"
        )
        typer.echo(str(stored.path))

    @app.command("evaluate")
    def evaluate(
        data: Data,
        mapping: MapOption = None,
        currency: Currency = "USD",
        train_start: TrainStart = None,
        train_days: TrainDays = 7,
        delay_days: DelayDays = 7,
        test_days: TestDays = 7,
        scores_out: Annotated[
            Path | None,
            typer.Option(help="Write transaction_id,score for every test-period transaction"),
        ] = None,
        threads: Threads = 2,
        seed: Seed = 7,
    ) -> None:
        """Train and test on a history; print AUC ROC, Average Precision and CP@100 as JSON."""
        console = Console(stderr=True)
        with phase_progress(console) as phase:
            events = read_history(data, mapping, currency, phase)
            split = _split(events, train_start, train_days, delay_days, test_days)
            result = _evaluate(events, builder(), split, _params(seed, threads), phase)
            if scores_out is not None:
                phase("write scores")
                _write_scores(result.scores, scores_out)
        console.print(
            f"trained {split.train_start}..{split.train_end}, tested {split.test_start}.."
            f"{split.test_end} (ends excluded) on {result.test_rows} events "
            f"({result.test_frauds} frauds)"
        )
        typer.echo(json.dumps(result.metrics.as_dict()))


@contextmanager
def phase_progress(console: Console) -> Iterator[Phase]:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("start", total=None)

        def phase(name: str) -> None:
            progress.update(task, description=name)
            progress.console.log(name)

        yield phase


def read_history(path: Path, mapping: str | None, currency: str, phase: Phase) -> pl.DataFrame:
    from haetae.risk.model.data import DataError, parse_mapping, read_events

    phase(f"read {path}")
    try:
        return read_events(path, parse_mapping(mapping), default_currency=currency)
    except DataError as exc:
        raise typer.BadParameter(str(exc), param_hint="--data/--map") from exc


def _split(
    events: pl.DataFrame, start: str | None, train_days: int, delay_days: int, test_days: int
) -> Split:
    from haetae.risk.model.protocol import Split, last_day

    if start is None:
        return Split.latest(last_day(events), train_days, delay_days, test_days)
    try:
        first = date.fromisoformat(start)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{start!r} is not YYYY-MM-DD", param_hint="--train-start"
        ) from exc
    return Split(first, train_days, delay_days, test_days)


def _params(seed: int, threads: int) -> TrainParams:
    from haetae.risk.model.train import TrainParams

    return TrainParams(seed=seed, num_threads=threads)


def _evaluate(
    events: pl.DataFrame, builder: FeatureBuilder, split: Split, params: TrainParams, phase: Phase
) -> Evaluation:
    from haetae.risk.model.pipeline import evaluate

    try:
        return evaluate(events, builder, split, params, phase)
    except ValueError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc


def _write_scores(scores: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scores.rename({"event_id": "transaction_id"}).write_csv(path)
