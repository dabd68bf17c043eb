"""Fraud features: the online cost per event (in-process store) and the offline time.

Online: a simulated Korean stream (logins, payments, transfers, reissues...; the
``haetae.simulate`` profile) is sorted by time; the first ``--warmup`` events fill the
store, then each of the next ``--events`` is timed on its own with ``perf_counter_ns``:
``features()`` (what scoring waits for) and ``update()`` (after the decision). The figures
are per event, on one core, in this process. Every run also checks the replayed values
against the offline computation for the measured events.

Offline: ``compute()`` over the handbook's simulated card payments (1.75 million by
default), from a Polars frame in memory, best of ``--repeat``.

    .venv/bin/python bench/features.py [--events 100000] [--warmup 100000] [--repeat 3]
        [--skip-offline] [--out bench/RESULTS.md]

Without ``--out`` the results are printed only.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import command_line, machine, percentile, replace_section
from haetae.risk.features import (
    FEATURES,
    FEATURES_BY_NAME,
    Feature,
    InProcessFeatureStore,
    compute,
)
from haetae.simulate.handbook import simulate_handbook
from haetae.simulate.korean import simulate_korean

HEADING = "## Fraud features (bench/features.py)"


HANDBOOK = (
    "amount",
    "is_weekend",
    "is_night",
    *(f"customer.{a}_{w}" for a in ("count", "avg_amount") for w in ("24h", "7d", "30d")),
    *(f"terminal.{a}_{w}" for a in ("delayed_count", "risk") for w in ("24h", "7d", "30d")),
)


def online(
    stream: pl.DataFrame, warmup: int, events: int, features: tuple[Feature, ...]
) -> dict[str, float]:
    rows = stream.to_dicts()
    store = InProcessFeatureStore(features)
    for row in rows[:warmup]:
        store.process(row)
    clock = time.perf_counter_ns
    reads: list[float] = []
    writes: list[float] = []
    replayed = []
    gc.collect()
    started = time.process_time()
    for row in rows[warmup:]:
        t0 = clock()
        values = store.features(row)
        t1 = clock()
        store.update(row)
        t2 = clock()
        reads.append((t1 - t0) / 1000)
        writes.append((t2 - t1) / 1000)
        replayed.append(values)
    cpu = time.process_time() - started
    _check(stream, replayed, warmup, features)
    both = sorted(r + w for r, w in zip(reads, writes, strict=True))
    reads.sort()
    writes.sort()
    figures = {
        "features_p50": statistics.median(reads),
        "features_p99": percentile(reads, 99),
        "update_p50": statistics.median(writes),
        "update_p99": percentile(writes, 99),
        "both_p50": statistics.median(both),
        "both_p99": percentile(both, 99),
        "both_p999": percentile(both, 99.9),
        "cpu_per_event": cpu / events * 1e6,
        "events_per_second": events / cpu,
    }
    return figures


def _check(
    stream: pl.DataFrame,
    replayed: Sequence[Mapping[str, float | bool | None]],
    warmup: int,
    features: tuple[Feature, ...],
) -> None:
    offline = compute(stream, features).slice(warmup)
    for name in (f.name for f in features):
        expected = offline.get_column(name).to_list()
        got = [values[name] for values in replayed]
        same = all(
            (a is None and b is None)
            or (a is not None and b is not None and abs(float(a) - float(b)) <= 1e-9)
            for a, b in zip(expected, got, strict=True)
        )
        if not same:
            raise SystemExit(f"online and offline differ on {name}")


def offline(repeat: int) -> tuple[float, int]:
    events = simulate_handbook(seed=42).events
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        compute(events)
        times.append(time.perf_counter() - started)
    return min(times), events.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-offline", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    stream = simulate_korean(seed=42).sort("occurred_at", maintain_order=True)
    stream = stream.head(args.warmup + args.events)
    handbook = tuple(FEATURES_BY_NAME[name] for name in HANDBOOK)
    lines = [
        f"Online, in-process store, {args.events:,} events of the simulated Korean stream "
        f"after {args.warmup:,} of warm-up, µs per event (p50 / p99):",
        "",
        "| features | `features()` | `update()` | both | both p99.9 | CPU per event | events/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, chosen in (
        (f"all {len(FEATURES)}", FEATURES),
        (f"the handbook's {len(handbook)}", handbook),
    ):
        f = online(stream, args.warmup, args.events, chosen)
        lines.append(
            f"| {label} | {f['features_p50']:.1f} / {f['features_p99']:.1f} "
            f"| {f['update_p50']:.1f} / {f['update_p99']:.1f} "
            f"| {f['both_p50']:.1f} / {f['both_p99']:.1f} | {f['both_p999']:.0f} "
            f"| {f['cpu_per_event']:.1f} | {f['events_per_second']:,.0f} |"
        )
    lines += [
        "",
        "CPU per event is process time over the measured events (timing calls included); "
        "every run checks the replayed values against `compute()`.",
    ]
    if not args.skip_offline:
        seconds, rows = offline(args.repeat)
        lines += ["", f"Offline `compute()`: {rows:,} handbook payments in {seconds:.1f} s."]
    info = machine()
    load = os.getloadavg()[0]
    lines += [
        "",
        f"- Date: {info['date']}",
        f"- Command: `{command_line()}`",
        f"- Machine: {info['cpus']} × {info['cpu_model']}, {info['memory']}, {info['os']}",
        f"- Software: {info['python']}; polars {pl.__version__}",
        f"- Load average at the end: {load:.2f}",
    ]
    body = "\n".join(lines)
    print(body)
    if args.out:
        replace_section(args.out, HEADING, body)


if __name__ == "__main__":
    main()
