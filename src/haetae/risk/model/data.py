"""Read a labelled history (CSV or Parquet) into the event shape, through a column mapping.

``--map transaction_id=TX_ID,timestamp=TX_DATETIME,amount=TX_AMOUNT,label=TX_FRAUD,...``
names, for each of our columns, the file's column that holds it. Keys are the columns of
:data:`~haetae.risk.events.EVENT_SCHEMA` plus two aliases, ``transaction_id`` (``event_id``)
and ``timestamp`` (``occurred_at``). Without a mapping, columns already named like ours are
taken as they are.

- Timestamps: a datetime column, or ISO 8601 text. Text or datetimes without an offset are
  taken as UTC; those with one are converted to UTC.
- Amounts: an integer column is taken as minor units already; a decimal column (``57.16``) is
  in major units and becomes minor units with the currency's exponent (USD 5716 cents, KRW
  unchanged), rounded to the nearest unit. The currency comes from a mapped ``currency``
  column, else from ``default_currency``.
- Labels: 1 fraud, 0 genuine, empty when not known (bool columns are accepted).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from haetae.currencies import CURRENCIES
from haetae.risk.events import EVENT_SCHEMA, conform

ALIASES = {"transaction_id": "event_id", "timestamp": "occurred_at"}
REQUIRED = ("event_id", "occurred_at", "amount", "label", "customer_id")


class DataError(ValueError):
    """The file cannot be read as a labelled history; the message says what to fix."""


def parse_mapping(text: str | None) -> dict[str, str]:
    """``"transaction_id=TX_ID,timestamp=TX_DATETIME"`` as ``{"event_id": "TX_ID", ...}``."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, column = part.partition("=")
        key, column = key.strip(), column.strip()
        if not sep or not key or not column:
            raise DataError(f"--map entry {part.strip()!r} is not KEY=COLUMN")
        target = ALIASES.get(key, key)
        if target not in EVENT_SCHEMA:
            known = ", ".join([*ALIASES, *EVENT_SCHEMA])
            raise DataError(f"--map key {key!r} is not one of: {known}")
        if target in mapping:
            raise DataError(f"--map gives {key!r} twice")
        mapping[target] = column
    return mapping


def read_events(
    path: Path, mapping: Mapping[str, str] | None = None, *, default_currency: str = "USD"
) -> pl.DataFrame:
    """The file's rows as events (:data:`EVENT_SCHEMA`), sorted by time."""
    if default_currency not in CURRENCIES:
        raise DataError(f"unknown currency {default_currency!r}; known: {', '.join(CURRENCIES)}")
    source = _scan(path)
    available = source.collect_schema().names()
    columns = _resolve(dict(mapping or {}), available, path)
    raw = source.select([pl.col(src).alias(dst) for dst, src in columns.items()]).collect()
    frame = raw.with_columns(
        pl.col(name).cast(pl.String)
        for name in ("event_id", "customer_id", "card_id", "terminal_id")
        if name in raw.columns
    )
    if "kind" not in frame.columns:
        frame = frame.with_columns(pl.lit("payment").alias("kind"))
    if "currency" not in frame.columns:
        frame = frame.with_columns(pl.lit(default_currency).alias("currency"))
    frame = frame.with_columns(pl.col("currency").cast(pl.String).str.to_uppercase())
    frame = frame.with_columns(
        _timestamps(frame, columns["occurred_at"]).alias("occurred_at"),
        _minor_units(frame, columns["amount"]),
        _labels(frame, columns["label"]),
    )
    return conform(frame).sort("occurred_at", maintain_order=True)


def _scan(path: Path) -> pl.LazyFrame:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pl.scan_parquet(path)
    if suffix in (".csv", ".txt"):
        return pl.scan_csv(path, infer_schema_length=10_000)
    raise DataError(f"{path}: give a .csv or .parquet file")


def _resolve(mapping: dict[str, str], available: list[str], path: Path) -> dict[str, str]:
    """Our column -> the file's column, for every column we will read."""
    for target, column in mapping.items():
        if column not in available:
            raise DataError(
                f"column {column!r} (mapped to {target}) is not in {path.name}; "
                f"its columns: {', '.join(available)}"
            )
    columns = {name: name for name in EVENT_SCHEMA if name in available and name not in mapping}
    columns.update(mapping)
    for target in REQUIRED:
        if target not in columns:
            key = next((alias for alias, name in ALIASES.items() if name == target), target)
            raise DataError(
                f"{path.name} has no {key} column: map one with --map {key}=COLUMN "
                f"(its columns: {', '.join(available)})"
            )
    return columns


def _timestamps(frame: pl.DataFrame, source: str) -> pl.Series:
    column = frame["occurred_at"]
    dtype = column.dtype
    if dtype == pl.String:
        try:
            column = column.str.to_datetime(time_unit="us")
        except pl.exceptions.PolarsError as exc:
            message = f"column {source!r} (timestamp) holds text that is not ISO 8601"
            raise DataError(message) from exc
    elif dtype == pl.Date:
        column = column.cast(pl.Datetime("us"))
    elif not isinstance(dtype, pl.Datetime):
        raise DataError(f"column {source!r} (timestamp) is {dtype}; give date-time text")
    if column.null_count():
        raise DataError(f"column {source!r} (timestamp) has empty values")
    return _as_utc(column)


def _as_utc(column: pl.Series) -> pl.Series:
    dtype = column.dtype
    assert isinstance(dtype, pl.Datetime)
    column = column.cast(pl.Datetime("us", dtype.time_zone))
    if dtype.time_zone is None:
        return column.dt.replace_time_zone("UTC")
    return column.dt.convert_time_zone("UTC")


def _minor_units(frame: pl.DataFrame, source: str) -> pl.Expr:
    dtype = frame.schema["amount"]
    column = pl.col("amount")
    if dtype.is_integer():
        return column.cast(pl.Int64)
    if dtype == pl.String:
        column = column.str.strip_chars().cast(pl.Float64, strict=False)
        if frame.select(column.is_null().sum() > pl.col("amount").is_null().sum()).item():
            raise DataError(f"column {source!r} (amount) holds text that is not a number")
    elif not (dtype.is_float() or dtype.is_decimal()):
        raise DataError(f"column {source!r} (amount) is {dtype}; give numbers")
    unknown = set(frame["currency"].drop_nulls().unique()) - set(CURRENCIES)
    if unknown:
        raise DataError(f"unknown currency {sorted(unknown)[0]!r}; known: {', '.join(CURRENCIES)}")
    factor = pl.col("currency").replace_strict(
        {code: 10**c.exponent for code, c in CURRENCIES.items()}, return_dtype=pl.Float64
    )
    return (column.cast(pl.Float64) * factor).round(0).cast(pl.Int64).alias("amount")


def _labels(frame: pl.DataFrame, source: str) -> pl.Expr:
    dtype = frame.schema["label"]
    column = pl.col("label")
    if dtype == pl.Boolean:
        return column.cast(pl.Int8)
    if not (dtype.is_integer() or dtype.is_float()):
        raise DataError(f"column {source!r} (label) is {dtype}; give 1 for fraud, 0 for genuine")
    bad = frame.filter(column.is_not_null() & ~column.is_in([0, 1]))
    if bad.height:
        raise DataError(
            f"column {source!r} (label) holds {bad['label'][0]!r}; give 1 for fraud, 0 for genuine"
        )
    return column.cast(pl.Int8)
