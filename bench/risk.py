"""Fraud detection: the model's quality on the handbook's protocol, the engine's speed
in-process on one core, and decisions over HTTP.

Three measurements (``MEASUREMENTS``; pick some with ``--only``), each writing its own
``###`` part of the "Fraud detection" section of RESULTS.md:

- ``quality``: our model (LightGBM on ``haetae.risk.features``) on our simulator's handbook
  profile with the handbook's time protocol (chapter 3.4's single week and a chapter-5-style
  mean over 4 test weeks), beside the baselines the handbook publishes for that protocol,
  and beside the handbook's models re-run on the same simulated data (the like-for-like
  reference).
- ``speed``: ``RiskService.evaluate`` in this process, pinned to one core, on SQLite, with a
  model trained as ``serve --demo`` trains it and the demo rules, over a replayed stream of
  simulated Korean events: one at a time (latency), N concurrent tasks (throughput), and
  the compute steps alone (features, model, rules).
- ``http``: ``haetae serve`` as a subprocess, ``POST /v1/risk/evaluate`` from a closed-loop
  aiohttp client at fixed concurrencies.

    .venv/bin/python bench/risk.py [--only quality,speed,http] [--profile auto|always|never]
        [--out bench/RESULTS.md] [--no-write] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import itertools
import json
import os
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import polars as pl
from sqlalchemy import event, func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    PYTHON,
    Child,
    PySpy,
    busy_seconds,
    clean_env,
    command_line,
    cpu_seconds,
    cpu_source,
    free_port,
    machine,
    package_versions,
    percentile,
    profile_shares,
    py_spy_argv,
    quietest_cpu,
    replace_parts,
    run_async,
    self_cpu_seconds,
    start_child,
    thread_cpu_seconds,
    wait_for_http,
    wait_until_quiet,
)
from haetae.config import Settings
from haetae.db.migrate import upgrade
from haetae.demo import DEMO_RULES
from haetae.logging import configure_logging
from haetae.risk.decisions.models import DecisionRecord
from haetae.risk.events import RiskEvent
from haetae.risk.features import InProcessFeatureStore
from haetae.risk.model.metrics import Metrics
from haetae.risk.rules.names import event_values
from haetae.risk.rules.ruleset import RuleSet
from haetae.services import Services, build_services, settle_heap
from haetae.simulate.run import Profile, simulate

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## Fraud detection (bench/risk.py)"
INTRO = (
    "The fraud engine (`haetae.risk`): the model's quality on the handbook's protocol, the "
    "engine's speed in-process on one core, and decisions over HTTP. Each part below is "
    "written by one measurement of `bench/risk.py` (`--only` re-runs some and keeps the "
    "others); see `bench/README.md`."
)
VERSIONS = (
    "lightgbm",
    "scikit-learn",
    "polars",
    "numpy",
    "sqlalchemy",
    "pydantic",
    "fastapi",
    "uvicorn",
    "uvloop",
    "aiohttp",
)
DECISIONS = ("allow", "challenge", "review", "block")


@dataclass
class Part:
    """One measurement's ``###`` part of the section."""

    title: str
    body: str
    summary: str  # one line for the console


def _header(args: argparse.Namespace, extra: Sequence[str] = ()) -> list[str]:
    info = machine()
    return [
        f"- Date: {info['date']}",
        f"- Command: `{command_line()}`",
        f"- Machine: {info['cpus']} × {info['cpu_model']}, {info['memory']} RAM, {info['os']}",
        f"- Software: {info['python']}; {package_versions(VERSIONS)}",
        *extra,
    ]


def _ratio_text(value: float, target: float, *, lower_is_better: bool = False) -> str:
    """ "1.23× the target" when met, "x% short (needs 1.2× more)" when missed."""
    if not target or value != value:  # NaN: nothing measured
        return "not measured"
    ratio = value / target
    if lower_is_better:
        if value < target:
            return f"{ratio:.2f}× the {target:g} limit"
        return f"{ratio:.1f}× the {target:g} limit"
    if value >= target:
        return f"{ratio:.2f}× the target {target:,.0f}"
    return f"{(1 - ratio) * 100:.0f}% short of {target:,.0f} (needs {1 / ratio:.1f}× more)"


# --- shared inputs: the demo model and the Korean stream -----------------------------------


@dataclass(frozen=True)
class DemoModel:
    models_dir: Path
    version: str
    metrics: dict[str, float]
    trees: int
    features: int
    seconds: float
    source: str


class Shared:
    """What the speed and http measurements both use, made once: a model trained as
    ``serve --demo`` trains it, and a simulated Korean stream to replay."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self._model: DemoModel | None = None
        self._stream: pl.DataFrame | None = None

    def model(self) -> DemoModel:
        if self._model is None:
            self._model = self._load_or_train()
        return self._model

    def _load_or_train(self) -> DemoModel:
        from haetae.risk.bootstrap import DEMO_CUSTOMERS, DEMO_DAYS, ensure_demo_model
        from haetae.risk.features import FEATURE_NAMES
        from haetae.risk.model import registry

        started = time.perf_counter()
        if self.args.models_dir is not None:
            models_dir = Path(self.args.models_dir)
            source = f"`--models-dir {models_dir}`"
        else:
            print("training the demo model (as `serve --demo` does) ...", flush=True)
            settings = Settings.model_validate(
                {"data_dir": self.workdir / "model-data", "log_level": "WARNING"}
            )
            ensure_demo_model(settings)
            models_dir = settings.effective_models_dir
            source = (
                "trained here by `haetae.risk.bootstrap.ensure_demo_model` (what `serve "
                f"--demo` runs): simulated Korean profile, seed 42, {DEMO_CUSTOMERS:,} "
                f"customers, {DEMO_DAYS} days, its latest split"
            )
        stored = registry.load(models_dir, "latest", FEATURE_NAMES)
        return DemoModel(
            models_dir=models_dir,
            version=stored.version,
            metrics={k: float(v) for k, v in stored.metrics.items()},
            trees=stored.model.booster.num_trees(),
            features=len(stored.model.feature_names),
            seconds=time.perf_counter() - started,
            source=source,
        )

    def stream(self) -> pl.DataFrame:
        """The replayed events: the Korean profile (every kind of event) with another seed
        than the model's training data, so the model scores events it has not seen."""
        if self._stream is None:
            print(f"simulating the Korean stream (seed {self.args.stream_seed}) ...", flush=True)
            events = simulate(Profile.KOREAN, seed=self.args.stream_seed)
            self._stream = events.sort("occurred_at", maintain_order=True)
        return self._stream


def api_body(row: dict[str, Any]) -> dict[str, Any]:
    """A simulated event as the JSON body of ``POST /v1/risk/evaluate`` (absent fields left
    out, as a bank's system would send them)."""
    body: dict[str, Any] = {
        "kind": row["kind"],
        "customer_id": row["customer_id"],
        "occurred_at": row["occurred_at"].isoformat(),
        "event_id": row["event_id"],
        "amount": row["amount"],
        "currency": row["currency"],
    }
    for name in ("card_id", "terminal_id", "approved"):
        if row[name] is not None:
            body[name] = row[name]
    if row["payee_bank"] is not None:
        body["payee"] = {"bank_code": row["payee_bank"], "account_number": row["payee_account"]}
    if row["device_id"] is not None:
        device = {"id": row["device_id"]}
        if row["ip"] is not None:
            device["ip"] = row["ip"]
        body["device"] = device
    return body


# --- quality -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    chapter: str
    model: str
    auc: float
    ap: float
    cp: float


SOURCE = (
    "Le Borgne, Siblini, Lebichot, Bontempi, *Reproducible Machine Learning for Credit Card "
    "Fraud Detection – Practical Handbook*, chapter 3.4 (baseline fraud detection system) "
    "and chapter 5 (model selection)"
)
PUBLISHED: tuple[Published, ...] = (
    Published("3.4", "logistic regression", 0.871, 0.606, 0.291),
    Published("3.4", "random forest", 0.867, 0.658, 0.287),
    Published("3.4", "XGBoost", 0.862, 0.639, 0.273),
    Published("5", "XGBoost (model selection)", 0.869, 0.687, 0.303),
    Published("5", "random forest (model selection)", 0.870, 0.678, 0.299),
)
# The handbook's protocol: train 7 days, delay 7, test 7. Chapter 3.4 trains from 07-25;
# chapter 5's estimate is a mean over test weeks; ours over these 4 (docs/model.md).
TRAIN_STARTS = (date(2018, 7, 25), date(2018, 8, 1), date(2018, 8, 8), date(2018, 8, 15))


@dataclass(frozen=True)
class Week:
    train_start: date
    test_start: date
    test_end: date  # exclusive
    metrics: Metrics
    test_rows: int
    test_frauds: int
    rounds: int
    seconds: float


def _mean(metrics: Sequence[Metrics]) -> Metrics:
    return Metrics(
        statistics.fmean(m.auc_roc for m in metrics),
        statistics.fmean(m.average_precision for m in metrics),
        statistics.fmean(m.card_precision_at_100 for m in metrics),
    )


def _reference(events: pl.DataFrame) -> dict[str, list[Metrics]]:
    """The handbook's own kind of models on the same simulated data and protocol, with its
    baseline features: what the published figures become on our data. Logistic regression
    on standardised features, as the handbook does; a random forest of 100 trees, depth 20
    (as docs/model.md measured). Features look back only, so they are computed once over the
    whole history."""
    from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    from haetae.risk.model import protocol
    from haetae.risk.model.handbook_baseline import HandbookBaseline
    from haetae.risk.model.metrics import metrics_of
    from haetae.risk.model.protocol import Split

    builder = HandbookBaseline()
    names = list(builder.names)
    featured = protocol.with_keys(builder.compute(events))
    makers: dict[str, Callable[[], Any]] = {
        "logistic regression": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(random_state=0)
        ),
        "random forest": lambda: RandomForestClassifier(
            n_estimators=100, max_depth=20, random_state=0, n_jobs=2
        ),
    }
    results: dict[str, list[Metrics]] = {name: [] for name in makers}
    for start in TRAIN_STARTS:
        split = Split(start)
        train = protocol.training_rows(featured, split)
        period = protocol.test_period(featured, split)
        for name, make in makers.items():
            model = make().fit(train.select(names).to_numpy(), train["label"].to_numpy())
            scores = model.predict_proba(period.select(names).to_numpy())[:, 1]
            scored = period.with_columns(pl.Series("score", scores))
            results[name].append(metrics_of(protocol.test_rows(scored, split)))
        print(f"  reference models, week from {start}: done", flush=True)
    return results


def measure_quality(args: argparse.Namespace, shared: Shared) -> Part:
    from haetae.risk.features.offline import OfflineFeatures
    from haetae.risk.model.pipeline import evaluate
    from haetae.risk.model.protocol import Split
    from haetae.risk.model.train import TrainParams

    print("quality: simulating the handbook profile (seed 42) ...", flush=True)
    started = time.perf_counter()
    events = simulate(Profile.HANDBOOK, seed=42)
    sim_seconds = time.perf_counter() - started
    payments, frauds = events.height, int(events["label"].sum() or 0)
    builder = OfflineFeatures()
    weeks: list[Week] = []
    for start in TRAIN_STARTS:
        split = Split(start)  # 7 days of training, 7 of delay, 7 of test
        t0 = time.perf_counter()
        result = evaluate(events, builder, split, TrainParams(seed=7, num_threads=2))
        weeks.append(
            Week(
                start,
                split.test_start,
                split.test_end,
                result.metrics,
                result.test_rows,
                result.test_frauds,
                int(result.model.info.get("rounds", 0)),
                time.perf_counter() - t0,
            )
        )
        m = result.metrics
        print(
            f"  week from {start}: AUC {m.auc_roc:.3f}, AP {m.average_precision:.3f}, "
            f"CP@100 {m.card_precision_at_100:.3f} ({weeks[-1].seconds:.0f} s)",
            flush=True,
        )
    reference = {} if args.no_reference else _reference(events)
    total = time.perf_counter() - started
    return _render_quality(args, weeks, reference, payments, frauds, sim_seconds, total)


def _like_for_like(ch34: Metrics, mean: Metrics, reference: dict[str, list[Metrics]]) -> str:
    """One sentence: ours against the best same-data reference, per metric and setting."""
    if not reference:
        return ""
    parts = []
    for label, attr in (
        ("Average Precision", "average_precision"),
        ("Card Precision@100", "card_precision_at_100"),
    ):
        best34 = max(float(getattr(ms[0], attr)) for ms in reference.values())
        best_mean = max(float(getattr(_mean(ms), attr)) for ms in reference.values())
        parts.append(
            f"{label} {float(getattr(ch34, attr)) / best34:.2f}× (ch. 3.4 week) and "
            f"{float(getattr(mean, attr)) / best_mean:.2f}× (4 weeks)"
        )
    return (
        " Like for like, against the best of the handbook's models re-run on our data: "
        + "; ".join(parts)
        + "."
    )


def _metrics_cells(m: Metrics) -> str:
    return f"{m.auc_roc:.3f} | {m.average_precision:.3f} | {m.card_precision_at_100:.3f}"


def _render_quality(
    args: argparse.Namespace,
    weeks: list[Week],
    reference: dict[str, list[Metrics]],
    payments: int,
    frauds: int,
    sim_seconds: float,
    total: float,
) -> Part:
    ch34, mean = weeks[0].metrics, _mean([w.metrics for w in weeks])
    best_ap = max(PUBLISHED, key=lambda p: p.ap)
    best_cp = max(PUBLISHED, key=lambda p: p.cp)
    best34_ap = max((p for p in PUBLISHED if p.chapter == "3.4"), key=lambda p: p.ap)
    best34_cp = max((p for p in PUBLISHED if p.chapter == "3.4"), key=lambda p: p.cp)
    best5_ap = max((p for p in PUBLISHED if p.chapter == "5"), key=lambda p: p.ap)
    best5_cp = max((p for p in PUBLISHED if p.chapter == "5"), key=lambda p: p.cp)
    ap_met = min(ch34.average_precision, mean.average_precision) > best_ap.ap
    cp_met = min(ch34.card_precision_at_100, mean.card_precision_at_100) > best_cp.cp
    met = ap_met and cp_met

    def versus(ours: float, best: Published, attr: str) -> str:
        theirs = float(getattr(best, attr))
        return (
            f"{ours:.3f} vs {theirs:.3f} ({best.model}, ch. {best.chapter}): {ours / theirs:.2f}×"
        )

    lines = [
        "Target (issue): better Average Precision and Card Precision@100 than every baseline "
        "the handbook publishes for the same protocol.",
        "",
        f"**Verdict: target {'met' if met else 'missed'}** against the published figures "
        f"(Average Precision {'met' if ap_met else 'missed'}, Card Precision@100 "
        f"{'met' if cp_met else 'missed'}), with the caveat below: on our simulated data the "
        "handbook's own kind of models score much higher Card Precision@100 than published "
        "too, so that margin is mostly the data's." + _like_for_like(ch34, mean, reference),
        "",
        "| metric | setting | ours vs the best published baseline (ratio) |",
        "| --- | --- | --- |",
        f"| Average Precision | ch. 3.4 (1 week) | "
        f"{versus(ch34.average_precision, best34_ap, 'ap')} |",
        f"| Average Precision | ch. 5 style (mean of 4 weeks) | "
        f"{versus(mean.average_precision, best5_ap, 'ap')} |",
        f"| Average Precision | either, vs every published row | "
        f"{versus(min(ch34.average_precision, mean.average_precision), best_ap, 'ap')} |",
        f"| Card Precision@100 | ch. 3.4 (1 week) | "
        f"{versus(ch34.card_precision_at_100, best34_cp, 'cp')} |",
        f"| Card Precision@100 | ch. 5 style (mean of 4 weeks) | "
        f"{versus(mean.card_precision_at_100, best5_cp, 'cp')} |",
        f"| Card Precision@100 | either, vs every published row | "
        f"{versus(min(ch34.card_precision_at_100, mean.card_precision_at_100), best_cp, 'cp')}"
        " |",
    ]
    if reference:
        lines += ["", "Like for like, against the handbook's models re-run on our data:", ""]
        lines += [
            "| metric | setting | ours vs the best of them on the same data (ratio) |",
            "| --- | --- | --- |",
        ]
        for label, attr, ours_34, ours_mean in (
            ("Average Precision", "average_precision", ch34, mean),
            ("Card Precision@100", "card_precision_at_100", ch34, mean),
        ):
            for setting, ours, pick in (
                ("ch. 3.4 (1 week)", ours_34, lambda ms: ms[0]),
                ("mean of 4 weeks", ours_mean, _mean),
            ):
                name, theirs = max(
                    ((n, float(getattr(pick(ms), attr))) for n, ms in reference.items()),
                    key=lambda kv: kv[1],
                )
                value = float(getattr(ours, attr))
                lines.append(
                    f"| {label} | {setting} | {value:.3f} vs {theirs:.3f} ({name}): "
                    f"{value / theirs:.2f}× |"
                )
    lines += [
        "",
        *_header(args),
        f"- Data: `simulate(Profile.HANDBOOK, seed=42)`: {payments:,} card payments, "
        f"{frauds:,} frauds, 2018-04-01 + 183 days ({sim_seconds:.0f} s); the handbook "
        "publishes 1,754,155 transactions and 14,681 frauds for its own draw",
        f"- Ours: LightGBM (`TrainParams(seed=7, num_threads=2)`, the defaults of "
        "docs/model.md) on the 50 features of `haetae.risk.features` "
        "(`OfflineFeatures`), through `haetae.risk.model.pipeline.evaluate`: train 7 days, "
        "delay 7, test 7, cards already known compromised left out of the test, metrics "
        f"as the handbook defines them (docs/model.md). Whole measurement {total:.0f} s",
        "",
        "| model | features | test period | test events (frauds) | AUC ROC | Average "
        "Precision | CP@100 |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for w in weeks:
        last = w.test_end - timedelta(days=1)
        lines.append(
            f"| ours, trained from {w.train_start:%m-%d} ({w.rounds} trees, {w.seconds:.0f} s) "
            f"| `risk.features` | {w.test_start:%m-%d}..{last:%m-%d} | {w.test_rows:,} "
            f"({w.test_frauds:,}) | {_metrics_cells(w.metrics)} |"
        )
    lines += [
        f"| **ours, ch. 3.4 setting** (the week from 07-25) | `risk.features` | "
        f"{weeks[0].test_start:%m-%d}..{weeks[0].test_end - timedelta(days=1):%m-%d} | | "
        f"**{_metrics_cells(ch34)}** |",
        f"| **ours, ch. 5 style** (mean of the 4 weeks) | `risk.features` | 4 weeks | | "
        f"**{_metrics_cells(mean)}** |",
    ]
    for name, ms in reference.items():
        lines += [
            f"| reference: {name}, same data, ch. 3.4 setting | handbook baseline | "
            f"{weeks[0].test_start:%m-%d}..{weeks[0].test_end - timedelta(days=1):%m-%d} | | "
            f"{_metrics_cells(ms[0])} |",
            f"| reference: {name}, same data, mean of 4 weeks | handbook baseline | 4 weeks "
            f"| | {_metrics_cells(_mean(ms))} |",
        ]
    for p in PUBLISHED:
        lines.append(
            f"| published, ch. {p.chapter}: {p.model} | handbook baseline | the handbook's "
            f"data | | {p.auc:.3f} | {p.ap:.3f} | {p.cp:.3f} |"
        )
    lines += [
        "",
        f"Published figures: {SOURCE}. They are the handbook's test results for the same "
        "protocol (chapter 3.4: the single test week after training from 2018-07-25; chapter "
        "5: the models chosen by its model selection).",
        "",
        "How comparable this is: the data is **our own reimplementation** of the handbook's "
        "simulator (its parameters, chapter 3; our code and random draws), not the "
        "handbook's dataset, so the comparison is *like* the handbook's, not identical: "
        "the published rows were measured on other draws. The reference rows are the "
        "handbook's kind of models (scikit-learn, its baseline features, "
        "`haetae.risk.model.handbook_baseline`) run here on the same data and protocol: they "
        "show how much of the difference is the data. Card Precision@100 in particular is "
        "much higher on our draws for every model, the references included, so beating the "
        "published 0.303 says little; the same-data comparison is the fair one. Our chapter "
        "5 figure is a mean over 4 test weeks; the handbook's chapter 5 estimates come from "
        "its own validation scheme over several weeks, so it is the same idea, not the same "
        "weeks.",
    ]
    summary = (
        f"quality: {'met' if met else 'MISSED'}: ch. 3.4 AP {ch34.average_precision:.3f} "
        f"CP@100 {ch34.card_precision_at_100:.3f}; 4-week mean AP {mean.average_precision:.3f} "
        f"CP@100 {mean.card_precision_at_100:.3f} (best published AP {best_ap.ap:.3f}, "
        f"CP@100 {best_cp.cp:.3f})"
    )
    return Part(MEASUREMENTS["quality"].title, "\n".join(lines), summary)


# --- speed (in-process) --------------------------------------------------------------------

TARGET_P99_MS = 2.0
TARGET_EVENTS_PER_S = 20_000.0


def pin_process(cpus: set[int]) -> None:
    """Every thread of this process on ``cpus`` (``sched_setaffinity(0)`` moves only the
    calling thread; Polars' and LightGBM's pools would stay on every core)."""
    for task in Path("/proc/self/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except OSError:
            continue  # a thread that has just exited


@dataclass
class Timed:
    """One timed phase of the replay."""

    events: int = 0
    wall: float = 0.0
    cpu: float = 0.0  # this process's CPU over the phase
    others: float = 0.0  # what other processes took of the pinned core meanwhile (s)
    commits: int = 0
    latencies_us: list[float] = field(default_factory=list)
    # Latencies of the events during which no garbage collection ran.
    clean_us: list[float] = field(default_factory=list)
    gc_runs: Counter[int] = field(default_factory=Counter)  # by generation
    gc_seconds: float = 0.0
    in_order_us: list[float] = field(default_factory=list)  # latencies as they came

    @property
    def per_second(self) -> float:
        return self.events / self.wall if self.wall else 0.0

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.events * 1e6 if self.events else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_us, q)

    def spikes(self, factor: float = 3.0) -> tuple[int, float, float]:
        """Events slower than ``factor`` × the median: how many, the median gap between
        them (in events) and their median latency (µs). A steady gap means a periodic
        cause."""
        limit = factor * self.p(50)
        slow = [i for i, took in enumerate(self.in_order_us) if took > limit]
        gaps = [b - a for a, b in itertools.pairwise(slow)]
        return (
            len(slow),
            statistics.median(gaps) if gaps else float("nan"),
            statistics.median(self.in_order_us[i] for i in slow) if slow else float("nan"),
        )


@dataclass
class Speed:
    cpu: int = 0
    cpu_busy_before: float = 0.0  # % of the chosen core others used just before
    history: int = 0
    history_seconds: float = 0.0
    warmup: int = 0
    sequential: Timed = field(default_factory=Timed)
    streams: dict[int, Timed] = field(default_factory=dict)  # by concurrent tasks
    steps: dict[str, list[float]] = field(default_factory=dict)  # µs per event, sorted
    stored: int = 0  # decision rows in the database at the end
    evaluated: int = 0  # evaluate() calls that returned
    decisions: Counter[str] = field(default_factory=Counter)
    profiles: list[Profiled] = field(default_factory=list)
    heap_objects: int = 0  # objects the garbage collector tracks, after the history
    full_gc_ms: float = 0.0  # one full collection of that heap
    full_gc_frozen_ms: float = 0.0  # the same once it is frozen (``settle_heap``)


class GcWatch:
    """The cyclic garbage collector's runs during a phase (``gc.callbacks``): how many per
    generation, how long in all, and a counter an event can compare before and after."""

    def __init__(self) -> None:
        self.runs: Counter[int] = Counter()
        self.seconds = 0.0
        self.count = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.runs[int(info["generation"])] += 1
            self.count += 1

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self)


@dataclass
class Profiled:
    """Where a profiled phase's CPU went (py-spy, or cProfile without it)."""

    label: str
    events: int
    samples: int = 0
    areas: dict[str, float] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    note: str = ""


class Cursor:
    """The replayed stream, consumed in time order by one phase after another."""

    def __init__(self, stream: pl.DataFrame) -> None:
        self.stream = stream
        self.at = 0

    def take(self, n: int) -> pl.DataFrame:
        if self.at + n > self.stream.height:
            raise SystemExit(
                f"the simulated stream has {self.stream.height:,} events; the phases asked "
                f"for more (use smaller --history/--events)"
            )
        part = self.stream.slice(self.at, n)
        self.at += n
        return part

    def events(self, n: int) -> list[RiskEvent]:
        """The next ``n`` as the API would build them (from the JSON body's dict)."""
        return [
            RiskEvent.model_validate(api_body(row)) for row in self.take(n).iter_rows(named=True)
        ]


def _commit_counter(services: Services) -> Callable[[], int]:
    count = itertools.count()
    seen = [0]

    def on_commit(_conn: Any) -> None:
        seen[0] = next(count) + 1

    event.listen(services.db.engine.sync_engine, "commit", on_commit)
    # The decisions' group commit goes straight through sqlite3 (``db.sqlite_rows``), which
    # SQLAlchemy's events do not see: its own count.
    writer = services.risk.writer
    return lambda: seen[0] + writer.transactions


async def _timed(
    services: Services,
    events: list[RiskEvent],
    tasks: int,
    cpu: int,
    commits: Callable[[], int],
    decisions: Counter[str],
) -> Timed:
    """Evaluate ``events`` with ``tasks`` concurrent tasks (1: one at a time, awaiting
    each), timing each call and the whole (call ``gc.collect()`` first: a phase should not
    pay for the garbage of the one before)."""
    risk = services.risk
    latencies: list[float] = []
    clean: list[float] = []
    clock = time.perf_counter_ns
    feed: Iterator[RiskEvent] = iter(events)

    with GcWatch() as watch:

        async def worker() -> None:
            for item in feed:
                runs = watch.count
                t0 = clock()
                assessment = await risk.evaluate(item)
                took = (clock() - t0) / 1000
                latencies.append(took)
                if watch.count == runs:
                    clean.append(took)
                decisions[assessment.decision] += 1
                for hit in assessment.rule_hits:
                    decisions[f"rule {hit.name}"] += 1

        commits0, busy0, cpu0 = commits(), busy_seconds(cpu), time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(tasks)))
        wall = time.perf_counter() - started
        used = time.process_time() - cpu0
    in_order = list(latencies)
    latencies.sort()
    clean.sort()
    return Timed(
        in_order_us=in_order,
        events=len(events),
        wall=wall,
        cpu=used,
        others=max(0.0, busy_seconds(cpu) - busy0 - used),
        commits=commits() - commits0,
        latencies_us=latencies,
        clean_us=clean,
        gc_runs=watch.runs,
        gc_seconds=watch.seconds,
    )


async def _profiled(
    services: Services,
    label: str,
    events: list[RiskEvent],
    tasks: int,
    cpu: int,
    commits: Callable[[], int],
    output: Path,
    others: set[int] | None,
) -> Profiled:
    """One more phase with a profiler attached: py-spy from outside (off the pinned core),
    else cProfile."""
    result = Profiled(label, len(events))
    gc.collect()  # before the profiler starts: it is not the phase's work
    spy = PySpy.start(os.getpid(), output, cpus=others)
    if spy is not None:
        await asyncio.sleep(1.0)  # py-spy attaching
        await _timed(services, events, tasks, cpu, commits, Counter())
        raw, result.note = spy.stop()
        result.samples, result.areas, result.steps = profile_shares(raw, AREAS, STEPS)
        return result
    profiler = cProfile.Profile()
    profiler.enable()
    await _timed(services, events, tasks, cpu, commits, Counter())
    profiler.disable()
    result.areas, result.samples = _cprofile_areas(profiler)
    result.note = "py-spy is not installed: cProfile, own time by file"
    return result


def _breakdown(
    services: Services, rules: RuleSet, events: list[RiskEvent]
) -> dict[str, list[float]]:
    """The compute steps of ``RiskService._decide``, each timed alone per event (the same
    calls in the same order, without storing the decision), plus the API-side parsing."""
    risk = services.risk
    store, scorer = risk.store, risk.scorer
    assert scorer is not None and isinstance(store, InProcessFeatureStore)
    clock = time.perf_counter_ns
    names = ("parse", "row", "features", "update", "model", "rules", "compute")
    steps: dict[str, list[float]] = {name: [] for name in names}
    bodies = [e.model_dump(mode="json", exclude_none=True) for e in events]
    for item, body in zip(events, bodies, strict=True):
        t0 = clock()
        RiskEvent.model_validate(body)
        t1 = clock()
        row = item.row()
        row["event_id"] = item.event_id
        t2 = clock()
        features = store.features(row)
        t3 = clock()
        store.update(row)
        t4 = clock()
        scored = scorer.score(features)
        t5 = clock()
        rules.evaluate(item.kind, {**features, **event_values(item, scored.score)})
        t6 = clock()
        for name, (a, b) in zip(
            names,
            ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6), (t1, t6)),
            strict=True,
        ):
            steps[name].append((b - a) / 1000)
    for values in steps.values():
        values.sort()
    return steps


# Where a profiled run's time goes: each sample goes to its innermost frame whose file is
# in one of these (first match wins); plain stdlib frames go to their caller.
AREAS: tuple[tuple[str, str], ...] = (
    ("haetae/risk/features/", "feature store (`risk/features`)"),
    ("haetae/risk/model/", "model score and reasons (`risk/model`, LightGBM)"),
    ("lightgbm/", "model score and reasons (`risk/model`, LightGBM)"),
    ("haetae/risk/rules/", "rules (`risk/rules`)"),
    ("haetae/risk/decisions/", "decision record (`risk/decisions`: rows, JSON columns)"),
    ("haetae/bus/", "outbox event and relay (`bus`)"),
    ("haetae/risk/service.py", "`RiskService._decide` itself"),
    ("haetae/risk/api.py", "risk API (response model)"),
    ("haetae/security/", "API key check"),
    ("haetae/db/", "database: transactions and the SQLite driver (`db`, sqlite3)"),
    ("sqlalchemy/", "database: SQLAlchemy (ORM flush, Core INSERT, session)"),
    ("pydantic", "pydantic (validation, serialization)"),
    ("fastapi/", "FastAPI (routing, dependencies, serialization)"),
    ("starlette/", "Starlette (middleware, request, response)"),
    ("uvicorn/", "uvicorn + httptools (HTTP)"),
    ("httptools/", "uvicorn + httptools (HTTP)"),
    ("structlog/", "logging"),
    ("/logging/", "logging"),
    ("prometheus_client/", "metrics (prometheus_client)"),
    ("/json/", "JSON (stdlib)"),
    ("/asyncio/", "event loop, tasks (asyncio, uvloop)"),
    ("uvloop/", "event loop, tasks (asyncio, uvloop)"),
    ("/haetae/", "haetae, other"),
)
STEPS: tuple[tuple[str, str], ...] = (
    ("whole HTTP request (uvicorn → app → response)", "RequestResponseCycle.run_asgi"),
    ("FastAPI dependency solving (key, locale, services)", "solve_dependencies"),
    ("FastAPI response serialization", "serialize_response"),
    ("`RiskService.evaluate` (compute, then waiting for the commit)", "RiskService.evaluate"),
    ("  `InProcessFeatureStore.process` (features + update)", "InProcessFeatureStore.process"),
    ("  `Scorer.score` (LightGBM contributions, calibration, reasons)", "Scorer.score"),
    ("  `RuleSet.evaluate`", "RuleSet.evaluate"),
    ("`GroupCommitWriter._drain` (the shared transactions)", "GroupCommitWriter._drain"),
    ("  `record_decision` (building the decision and outbox rows)", "record_decision"),
    ("SQLAlchemy `Session._flush` (unit of work, INSERTs)", "Session._flush"),
    ("`OutboxRelay.publish_pending` (relay: read + mark events)", "OutboxRelay.publish_pending"),
    ("any SQLAlchemy frame (its greenlet-side stacks included)", "/sqlalchemy/"),
)


def _cprofile_areas(profiler: cProfile.Profile) -> tuple[dict[str, float], int]:
    """Without py-spy: cProfile's own time per function, grouped by the same areas (by the
    function's file only: stdlib time stays with the stdlib here)."""
    stats = pstats.Stats(profiler)
    by_area: Counter[str] = Counter()
    calls = 0
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, nc, tottime, _ct, _callers) in raw.items():
        area = next((name for needle, name in AREAS if needle in filename), "other")
        by_area[area] += tottime
        calls += nc
    total = sum(by_area.values()) or 1.0
    return {k: v / total * 100 for k, v in by_area.most_common()}, calls


async def _speed(args: argparse.Namespace, model: DemoModel, stream: pl.DataFrame) -> Speed:
    result = Speed()
    workdir = Path(tempfile.mkdtemp(prefix="speed-", dir=args.workdir))
    settings = Settings.model_validate(
        {
            "data_dir": workdir / "data",
            "models_dir": model.models_dir,
            "log_level": "WARNING",
        }
    )
    upgrade(settings.effective_database_url)
    services = build_services(settings)
    original = os.sched_getaffinity(0)
    try:
        if services.risk.scorer is None:
            raise SystemExit(f"no model could be loaded from {model.models_dir}")
        for name, rule, kinds in DEMO_RULES:
            await services.rules.save(
                name, rule, author="bench", kinds=list(kinds) if kinds else None
            )
        await services.rules.current()
        commits = _commit_counter(services)
        cursor = Cursor(stream)
        cpu, busy = quietest_cpu(sorted(original))
        result.cpu, result.cpu_busy_before = cpu, busy
        pin_process({cpu})
        print(f"speed: pinned to CPU {cpu} (others used {busy:.0f}% of it)", flush=True)

        # The store's history: the stream's first events straight into the feature store, so
        # that the measured events see windows as full as a running bank's.
        started = time.perf_counter()
        history = cursor.take(args.history)
        store = services.risk.store
        assert isinstance(store, InProcessFeatureStore)  # the embedded default measured here
        for row in history.iter_rows(named=True):
            row["label"] = row["scenario"] = None  # online, labels come later
            store.process(row)
        result.history, result.history_seconds = history.height, time.perf_counter() - started
        del history
        # What a full collection costs with this heap: any event it lands in waits for it.
        gc.collect()
        result.heap_objects = len(gc.get_objects())
        t0 = time.process_time()
        gc.collect()
        result.full_gc_ms = (time.process_time() - t0) * 1000
        # What `Services.start` does once the store is warm: the heap out of the collector's
        # generations, and WAL checkpoints in a thread (pinned to this core like the rest).
        settle_heap()
        t0 = time.process_time()
        gc.collect()
        result.full_gc_frozen_ms = (time.process_time() - t0) * 1000
        await services.db.start_checkpointer()
        # The checkpoint thread may use the other core too, as on a server: pinned beside the
        # event loop it took the core from it for milliseconds at a time, a tail no server
        # has. Its CPU still counts in the CPU per event (process time covers every thread).
        for thread in threading.enumerate():
            if thread.name == "sqlite-checkpointer" and thread.native_id is not None:
                os.sched_setaffinity(thread.native_id, original)
        print(f"  history: {result.history:,} events in {result.history_seconds:.0f} s", flush=True)

        # Warm-up through evaluate: compiled SQL, the ORM's caches, LightGBM's fast path.
        warm = cursor.events(args.warmup)
        for item in warm:
            await services.risk.evaluate(item)
        result.warmup = len(warm)
        evaluated = len(warm)

        seq = cursor.events(args.latency_events)
        gc.collect()
        result.sequential = await _timed(services, seq, 1, cpu, commits, result.decisions)
        evaluated += len(seq)
        _print_timed("one at a time", result.sequential)
        for tasks in args.tasks:
            batch = cursor.events(args.events)
            gc.collect()
            timed = await _timed(services, batch, tasks, cpu, commits, result.decisions)
            result.streams[tasks] = timed
            evaluated += len(batch)
            _print_timed(f"{tasks} tasks", timed)

        print(f"  breakdown: {args.breakdown_events:,} events ...", flush=True)
        rules = await services.rules.current()  # the compiled rules in force
        result.steps = _breakdown(services, rules, cursor.events(args.breakdown_events))

        if args.profile == "always" or (args.profile == "auto" and not _speed_met(result)):
            others = set(original) - {cpu} or None
            for label, tasks, n in (
                ("one at a time", 1, max(args.profile_events // 4, 1)),
                (f"{max(args.tasks)} concurrent tasks", max(args.tasks), args.profile_events),
            ):
                print(f"  profiling {label}: {n:,} events ...", flush=True)
                batch = cursor.events(n)
                output = workdir / f"profile-{tasks}.txt"
                profiled = await _profiled(
                    services, label, batch, tasks, cpu, commits, output, others
                )
                result.profiles.append(profiled)
                evaluated += len(batch)
        result.evaluated = evaluated
        async with services.db.sessions() as session:
            stored = await session.scalar(select(func.count()).select_from(DecisionRecord))
        result.stored = int(stored or 0)
    finally:
        os.sched_setaffinity(0, original)
        pin_process(original)
        await services.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def _others_share(t: Timed) -> float:
    """What other processes took of the pinned core, as % of the phase."""
    return t.others / t.wall * 100 if t.wall else 0.0


def _print_timed(label: str, t: Timed) -> None:
    print(
        f"  {label}: {t.events:,} events, {t.per_second:,.0f}/s, p50 {t.p(50):,.0f} µs, "
        f"p99 {t.p(99):,.0f} µs, CPU {t.cpu_us:,.0f} µs/event, "
        f"{t.events / max(t.commits, 1):,.1f} events/commit, others took "
        f"{_others_share(t):.0f}% of the core",
        flush=True,
    )


def _speed_met(s: Speed) -> bool:
    best = max((t.per_second for t in s.streams.values()), default=0.0)
    return s.sequential.p(99) / 1000 < TARGET_P99_MS and best >= TARGET_EVENTS_PER_S


def measure_speed(args: argparse.Namespace, shared: Shared) -> Part:
    model = shared.model()
    stream = shared.stream()
    wait_until_quiet(args.wait_quiet)
    s = run_async(_speed(args, model, stream))
    return _render_speed(args, model, s)


def _profiles_table(profiles: Sequence[Profiled], intro: str) -> list[str]:
    """Areas and cumulative steps of the profiled phases, side by side, after ``intro``
    (which says what was profiled, and how)."""
    shown = [p for p in profiles if p.areas]
    if not shown:
        notes = "; ".join(p.note for p in profiles if p.note) or "the profiler recorded nothing"
        return ["", f"No profile: {notes}."]
    phases = " and ".join(f"{p.label} ({p.events:,} events, {p.samples:,} samples)" for p in shown)
    lines = [
        "",
        f"{intro}: {phases}. Self time by area (each sample goes to its innermost frame in "
        "one of these; stdlib frames go to their caller):",
        "",
        "| area | " + " | ".join(p.label for p in shown) + " |",
        "| --- |" + " ---: |" * len(shown),
    ]
    areas = list(dict.fromkeys(a for p in shown for a in p.areas))
    for area in areas:
        if max(p.areas.get(area, 0.0) for p in shown) >= 0.5:
            cells = " | ".join(f"{p.areas.get(area, 0.0):.1f}%" for p in shown)
            lines.append(f"| {area} | {cells} |")
    if any(p.steps for p in shown):
        lines += [
            "",
            "Cumulative (samples with the function on the stack; SQLAlchemy's synchronous "
            "work runs in greenlets, whose stacks py-spy shows apart from the coroutine "
            "awaiting them, so the last line counts it wherever it shows):",
            "",
            "| function | " + " | ".join(p.label for p in shown) + " |",
            "| --- |" + " ---: |" * len(shown),
        ]
        for label, _ in STEPS:
            values = [p.steps.get(label, 0.0) for p in shown]
            if max(values) > 0:
                lines.append(f"| {label} | " + " | ".join(f"{v:.1f}%" for v in values) + " |")
    return lines


def _tail_lines(s: Speed) -> list[str]:
    """The one-at-a-time latency tail: how often an event took over 3× the median."""
    count, gap, spike = s.sequential.spikes()
    lines = [
        "",
        f"The latency tail, one at a time: {count:,} of {s.sequential.events:,} events took "
        f"over 3× the median, one every {gap:,.0f} events or so (median gap), "
        f"{spike / 1000:,.1f} ms each (median).",
    ]
    return lines


def _gc_line(label: str, t: Timed) -> str:
    runs = ", ".join(f"gen {g} × {n:,}" for g, n in sorted(t.gc_runs.items())) or "none"
    hit = len(t.latencies_us) - len(t.clean_us)
    text = (
        f"{label}: {sum(t.gc_runs.values()):,} collections ({runs}), {t.gc_seconds * 1000:,.0f} "
        f"ms in all ({t.gc_seconds / t.wall * 100 if t.wall else 0:.1f}% of the phase); "
        f"{hit:,} events had one run while they waited"
    )
    if len(t.clean_us) >= max(100, len(t.latencies_us) // 10):
        text += f"; p99 of the others {percentile(t.clean_us, 99):,.0f} µs (all: {t.p(99):,.0f})"
    return text


def _render_speed(args: argparse.Namespace, model: DemoModel, s: Speed) -> Part:
    seq = s.sequential
    tasks = max(s.streams, key=lambda n: s.streams[n].per_second)
    best = s.streams[tasks]
    p99_ms = seq.p(99) / 1000
    lat_met = p99_ms < TARGET_P99_MS
    rate_met = best.per_second >= TARGET_EVENTS_PER_S
    cpu_rate = 1e6 / best.cpu_us if best.cpu_us else 0.0
    step = {name: statistics.fmean(values) for name, values in s.steps.items()}
    lines = [
        f"Targets (issue): p99 under {TARGET_P99_MS:g} ms per decision and at least "
        f"{TARGET_EVENTS_PER_S:,.0f} events/s on one core.",
        "",
        f"**Verdict: latency target {'met' if lat_met else 'missed'}**: one event at a time, "
        f"p99 **{p99_ms:.2f} ms** ({_ratio_text(p99_ms, TARGET_P99_MS, lower_is_better=True)};"
        f" p50 {seq.p(50) / 1000:.2f} ms). **Throughput target "
        f"{'met' if rate_met else 'missed'}**: **{best.per_second:,.0f} events/s** with "
        f"{tasks} concurrent tasks, {_ratio_text(best.per_second, TARGET_EVENTS_PER_S)}; by "
        f"CPU, {best.cpu_us:,.0f} µs per event, i.e. {cpu_rate:,.0f} events/s if the core "
        "were ours alone. These are the online engine's calls, each storing its decision; "
        "a replayed stream decided in batch (the same decisions, nothing stored) is "
        "bench/replay.py's section below.",
        "",
        f"Where the time goes: the compute of a decision (features {step['features']:.0f} + "
        f"{step['update']:.0f} µs, model {step['model']:.0f} µs, rules {step['rules']:.0f} µs: "
        f"{step['compute']:.0f} µs on average) is about "
        f"{step['compute'] / best.cpu_us * 100:.0f}% of the CPU per event under load "
        f"({best.cpu_us:,.0f} µs); the rest, ~{best.cpu_us - step['compute']:,.0f} µs, is "
        "storing the decision (group-commit writer, SQLAlchemy ORM, SQLite) and the event "
        f"loop (the profile below: SQLAlchemy's unit of work and session around half of "
        f"the samples). One at a time, every event is its own transaction "
        f"({seq.events / max(seq.commits, 1):.1f} events per commit) and CPU per event is "
        f"{seq.cpu_us:,.0f} µs: about {seq.cpu_us - step['compute']:,.0f} µs of it is one "
        "transaction for one decision (WAL checkpoints run in a thread of their own, "
        "`haetae.db.checkpointer`; garbage collection below). Even the compute alone "
        f"({1e6 / step['compute']:,.0f} events/s) is short of "
        f"{TARGET_EVENTS_PER_S:,.0f}/s: the feature store by itself costs "
        f"{step['features'] + step['update']:.0f} µs an event.",
        "",
        *_header(
            args,
            [
                f"- One core: this process (every thread but SQLite's checkpoint thread, "
                "which may use either core as on a server; its CPU is counted) pinned with "
                f"`sched_setaffinity` to CPU {s.cpu}, the less busy one when chosen (others "
                f"used {s.cpu_busy_before:.0f}% of it over the second before)",
                f"- Model: `{model.version}`, {model.trees} trees on {model.features} "
                f"features, {model.source} (its test metrics: "
                + ", ".join(f"{k} {v:.3f}" for k, v in model.metrics.items() if v < 1.5)
                + ")",
                "- Rules: the demo rules (`haetae.demo.DEMO_RULES`), saved through "
                "`RuleBook.save`: "
                + "; ".join(
                    f"`{rule}`" + (f" ({', '.join(k)})" if k else "") for _, rule, k in DEMO_RULES
                ),
                f"- Stream: `simulate(Profile.KOREAN, seed={args.stream_seed})` in time order "
                f"(every kind of event); the first {s.history:,} fed straight to the feature "
                f"store as history ({s.history_seconds:.0f} s, not measured), then "
                f"{s.warmup:,} through `evaluate` as warm-up, then each phase below on the "
                "next events (each event is evaluated once)",
                "- `build_services` as `haetae serve` does (in-process feature store, SQLite "
                "in a temporary directory, `HAETAE_LOG_LEVEL=WARNING`, uvloop); the outbox "
                "relay is not started, so the `risk.decided` outbox rows are written but not "
                "relayed (the HTTP part has the relay)",
            ],
        ),
        "",
        "| phase | events | events/s (wall) | p50 µs | p99 µs | max µs | CPU µs per event "
        "| events/s by CPU | events per commit | others on the core |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = [("one at a time (awaiting each)", seq)] + [
        (f"{n} concurrent tasks", t) for n, t in s.streams.items()
    ]
    for label, t in rows:
        lines.append(
            f"| {label} | {t.events:,} | **{t.per_second:,.0f}** | {t.p(50):,.0f} | "
            f"**{t.p(99):,.0f}** | {t.p(100):,.0f} | {t.cpu_us:,.0f} | "
            f"{1e6 / t.cpu_us if t.cpu_us else 0:,.0f} | "
            f"{t.events / max(t.commits, 1):,.1f} | {_others_share(t):.0f}% |"
        )
    lines += _tail_lines(s)
    lines += [
        "",
        f"Garbage collection (`gc.callbacks`): after the history the collector tracks "
        f"{s.heap_objects:,} objects (the feature store's windows among them), and one full "
        f"collection of them takes **{s.full_gc_ms:,.0f} ms** of CPU, which the events it "
        "would land in would wait for. Once start-up is done the heap is frozen "
        f"(`haetae.services.settle_heap`): a full collection then takes "
        f"{s.full_gc_frozen_ms:,.0f} ms, and the young generation is collected every "
        f"{gc.get_threshold()[0]:,} allocations. "
        + "; ".join(_gc_line(label, t) for label, t in rows)
        + ".",
    ]
    check = (
        "every decision stored"
        if s.stored == s.evaluated
        else f"**{s.evaluated - s.stored:,} decisions missing**"
    )
    lines += [
        "",
        "Latency: `perf_counter` around each `await RiskService.evaluate(event)`, which "
        "returns once the decision is committed; with concurrent tasks it includes waiting "
        "for the shared commit. CPU: `time.process_time()` over the phase (all threads); "
        "events/s by CPU is 1 ÷ CPU per event. Others on the core: `/proc/stat` busy time of "
        "the pinned CPU less this process's, as a share of the phase. Decisions: "
        + ", ".join(f"{d} {s.decisions[d]:,}" for d in DECISIONS)
        + " (the most severe hit decides, so a rule can hit without deciding); rule hits: "
        + ", ".join(f"`{name}` {s.decisions[f'rule {name}']:,}" for name, _, _ in DEMO_RULES)
        + f"; {s.stored:,} rows in `risk_decisions` for {s.evaluated:,} evaluations "
        f"({check}).",
        "",
        f"Compute steps alone, per event, over {len(s.steps['compute']):,} more events (the "
        "calls `RiskService._decide` makes, in its order, without storing the decision):",
        "",
        "| step | p50 µs | p99 µs | mean µs |",
        "| --- | ---: | ---: | ---: |",
    ]
    labels = {
        "parse": "parse the API's JSON (as a dict) into a `RiskEvent` (HTTP side; not in "
        "`evaluate`)",
        "row": "`RiskEvent.row()`",
        "features": "features: `InProcessFeatureStore.features()`",
        "update": "features: `InProcessFeatureStore.update()` (counting the event)",
        "model": "model: `Scorer.score()` (score and 3 reasons)",
        "rules": "rules: the values dict + `RuleSet.evaluate()`",
        "compute": "**all of the above but parsing** (what a decision computes)",
    }
    for name, label in labels.items():
        values = s.steps[name]
        lines.append(
            f"| {label} | {percentile(values, 50):.1f} | {percentile(values, 99):.1f} | "
            f"{statistics.fmean(values):.1f} |"
        )
    if s.profiles:
        how = (
            s.profiles[0].note
            if s.profiles[0].note.startswith("py-spy is not")
            else "py-spy, `record --nonblocking` at 250 Hz, kept off the pinned core"
        )
        lines += _profiles_table(
            s.profiles,
            f"Where the CPU goes: the same phases once more on further events, with a "
            f"profiler ({how}; not figures)",
        )
    summary = (
        f"speed: latency {'met' if lat_met else 'MISSED'} (p99 {p99_ms:.2f} ms), throughput "
        f"{'met' if rate_met else 'MISSED'} ({best.per_second:,.0f} events/s, "
        f"{best.cpu_us:,.0f} µs CPU each)"
    )
    return Part(MEASUREMENTS["speed"].title, "\n".join(lines), summary)


# --- http ----------------------------------------------------------------------------------

TARGET_HTTP_RPS = 2_000.0
TARGET_HTTP_P99_MS = 20.0


# Runs ``haetae serve`` itself (the CLI's entry point, unchanged) and records the garbage
# collector's runs (``gc.callbacks``), written as JSON on SIGUSR2 and then reset: the
# diagnostic run's account of what collections cost the server.
SERVER_WRAPPER = r"""
import gc, json, signal, sys, time

out = sys.argv[2]
runs, total, started = {}, [0.0], [0.0]


def watch(phase, info):
    if phase == "start":
        started[0] = time.process_time()
        return
    took = time.process_time() - started[0]
    total[0] += took
    n, s = runs.get(info["generation"], (0, 0.0))
    runs[info["generation"]] = (n + 1, s + took)


def dump(*_):
    with open(out, "w") as f:
        json.dump({"runs": runs, "seconds": total[0], "objects": len(gc.get_objects())}, f)
    runs.clear()
    total[0] = 0.0


gc.callbacks.append(watch)
signal.signal(signal.SIGUSR2, dump)
sys.argv = ["haetae", "serve", "--port", sys.argv[1]]
from haetae.cli import app

app()
"""


class Stack:
    """``haetae serve`` with a model, a ``risk`` service key and the demo rules (created
    through the API), in a temporary data directory."""

    def __init__(self, workdir: Path, models_dir: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="http-", dir=workdir))
        self.port = free_port()
        self.env = clean_env(
            {
                "HAETAE_DATA_DIR": str(self.dir / "data"),
                "HAETAE_MODELS_DIR": str(models_dir),
                "HAETAE_LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.key = ""
        self.server: Child | None = None
        self.gc_path = self.dir / "gc.json"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, watch_gc: bool = False) -> Child:
        cli = [PYTHON, "-m", "haetae.cli"]
        created = subprocess.run(
            [*cli, "keys", "create", "--service", "bench-risk", "--scope", "risk"],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"haetae keys create failed:\n{created.stderr}")
        self.key = created.stdout.strip().splitlines()[-1]
        argv = [*cli, "serve", "--port", str(self.port)]
        if watch_gc:
            argv = [PYTHON, "-c", SERVER_WRAPPER, str(self.port), str(self.gc_path)]
        self.server = start_child("server", argv, env=self.env, log_dir=self.dir, cwd=ROOT)
        wait_for_http(f"{self.base}/healthz", self.server)
        for name, rule, kinds in DEMO_RULES:
            body: dict[str, Any] = {"name": name, "rule": rule}
            if kinds:
                body["kinds"] = list(kinds)
            status, answer = self.post("/v1/risk/rules", body)
            if status != 201:
                raise RuntimeError(f"creating rule {name}: HTTP {status} {answer[:300]!r}")
        return self.server

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()

    def stop(self, keep: bool) -> None:
        if self.server is not None:
            self.server.stop()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class HttpRun:
    concurrency: int
    window: float = 0.0
    ok: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core over the window
    sent: int = 0
    exhausted: bool = False
    profiled: Profiled | None = None
    gc: dict[str, Any] = field(default_factory=dict)  # the server's collections (wrapper)

    @property
    def rps(self) -> float:
        return self.ok / self.window if self.window else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    @property
    def ok_share(self) -> float:
        total = sum(self.statuses.values()) + sum(self.errors.values())
        return self.statuses.get(200, 0) / total * 100 if total else 0.0


async def _drive(
    run: HttpRun,
    stack: Stack,
    bodies: list[bytes],
    warmup: float,
    seconds: float,
    on_start: Callable[[], None],
    on_end: Callable[[], None],
) -> None:
    url = f"{stack.base}/v1/risk/evaluate"
    headers = {"Authorization": f"Bearer {stack.key}", "Content-Type": "application/json"}
    counter = itertools.count()
    loop = asyncio.get_running_loop()
    t_start = time.perf_counter() + warmup
    t_end = t_start + seconds
    loop.call_later(warmup, on_start)
    loop.call_later(warmup + seconds, on_end)

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < t_end:
            i = next(counter)
            if i >= len(bodies):
                run.exhausted = True
                return
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=bodies[i], headers=headers) as response:
                    raw = await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as error:
                if t_start <= time.perf_counter() <= t_end:
                    run.errors[type(error).__name__] += 1
                continue
            t1 = time.perf_counter()
            run.sent = i + 1
            if not t_start <= t1 <= t_end:
                continue  # warm-up, or finished after the window closed
            run.latencies_ms.append((t1 - t0) * 1000)
            run.statuses[status] += 1
            decision = None
            if status == 200:
                try:
                    decision = json.loads(raw).get("decision")
                except ValueError:
                    decision = None
            if decision in DECISIONS:
                run.ok += 1
                run.decisions[decision] += 1
            elif len(run.examples) < 5:
                run.examples.append(f"HTTP {status}: {raw[:200]!r}")

    connector = aiohttp.TCPConnector(limit=run.concurrency, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(run.concurrency)))
    run.window = seconds
    run.latencies_ms.sort()


def http_once(
    args: argparse.Namespace,
    models_dir: Path,
    bodies: list[bytes],
    concurrency: int,
    seconds: float,
    *,
    profile: bool = False,
) -> HttpRun:
    run = HttpRun(concurrency)
    stack = Stack(args.workdir, models_dir)
    marks: dict[str, dict[str, float]] = {}
    spy: list[PySpy] = []
    try:
        server = stack.start(watch_gc=profile)

        def sample(mark: str) -> None:
            marks[mark] = {
                "server": cpu_seconds(server.pid),
                "server event loop": thread_cpu_seconds(server.pid, server.pid),
                "load generator": self_cpu_seconds(),
                "machine": busy_seconds(),
            }

        def on_end() -> None:
            sample("end")
            if profile:
                stack.gc_path.unlink(missing_ok=True)
                os.kill(server.pid, signal.SIGUSR2)  # the collections of the window

        def on_start() -> None:
            sample("start")
            if profile:
                os.kill(server.pid, signal.SIGUSR2)  # resets the wrapper's record
                run.profiled = Profiled(f"concurrency {concurrency}", 0)
                started = PySpy.start(server.pid, stack.dir / "server-profile.txt", rate=200)
                if started is None:
                    run.profiled.note = "py-spy is not installed (`.venv/bin/pip install py-spy`)"
                else:
                    spy.append(started)

        run_async(_drive(run, stack, bodies, args.http_warmup, seconds, on_start, on_end))
        for name in ("server", "server event loop", "load generator", "machine"):
            run.cpu[name] = (marks["end"][name] - marks["start"][name]) / seconds * 100
        run.cpu["others"] = max(
            0.0, run.cpu.pop("machine") - run.cpu["server"] - run.cpu["load generator"]
        )
        if profile:
            deadline = time.monotonic() + 5
            while not stack.gc_path.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            with contextlib.suppress(OSError, ValueError):
                run.gc = json.loads(stack.gc_path.read_text())
        if spy and run.profiled is not None:
            raw, run.profiled.note = spy[0].stop()
            run.profiled.samples, run.profiled.areas, run.profiled.steps = profile_shares(
                raw, AREAS, STEPS
            )
            run.profiled.events = len(run.latencies_ms)
        if not server.alive():
            raise RuntimeError(f"the server died during the run:\n{server.log_tail()}")
        return run
    finally:
        for s in spy:
            if s.proc.poll() is None:
                s.proc.kill()
        stack.stop(args.keep)


@dataclass(frozen=True)
class HttpMedian:
    """The runs of one concurrency, judged by their medians (the machine's speed varies
    from run to run; one lucky or unlucky run must not decide)."""

    concurrency: int
    runs: list[HttpRun]
    rps: float
    p99: float

    @property
    def met(self) -> bool:
        return (
            self.rps >= TARGET_HTTP_RPS
            and self.p99 < TARGET_HTTP_P99_MS
            and all(r.ok_share == 100 for r in self.runs)
        )

    @property
    def middle(self) -> HttpRun:
        """The run whose throughput is the median (for its CPU figures)."""
        return sorted(self.runs, key=lambda r: r.rps)[len(self.runs) // 2]


def _http_medians(runs: list[HttpRun]) -> list[HttpMedian]:
    by_concurrency: dict[int, list[HttpRun]] = {}
    for run in runs:
        by_concurrency.setdefault(run.concurrency, []).append(run)
    return [
        HttpMedian(
            concurrency,
            group,
            statistics.median(r.rps for r in group),
            statistics.median(r.p(99) for r in group),
        )
        for concurrency, group in by_concurrency.items()
    ]


def measure_http(args: argparse.Namespace, shared: Shared) -> Part:
    model = shared.model()
    rows = shared.stream().head(args.http_events)
    # Encoded before the runs, so the load generator spends its CPU on HTTP only.
    bodies = [json.dumps(api_body(row)).encode() for row in rows.iter_rows(named=True)]
    runs: list[HttpRun] = []
    for concurrency in args.concurrency:
        for repeat in range(args.http_repeat):
            wait_until_quiet(args.wait_quiet)
            print(
                f"http: concurrency {concurrency}, run {repeat + 1} of {args.http_repeat}: "
                f"{args.http_warmup:g} s warm-up + {args.http_seconds:g} s ...",
                flush=True,
            )
            run = http_once(args, model.models_dir, bodies, concurrency, args.http_seconds)
            runs.append(run)
            _print_http(run)
    profiled: HttpRun | None = None
    medians = _http_medians(runs)
    if args.profile == "always" or (args.profile == "auto" and not any(m.met for m in medians)):
        concurrency = max(args.concurrency)
        print(f"http: diagnostic run, py-spy on the server, concurrency {concurrency} ...")
        profiled = http_once(
            args, model.models_dir, bodies, concurrency, args.extra_seconds, profile=True
        )
        _print_http(profiled)
    return _render_http(args, model, runs, profiled, len(bodies))


def _print_http(run: HttpRun) -> None:
    cpu = ", ".join(f"{k} {v:.0f}%" for k, v in run.cpu.items())
    print(
        f"  {run.rps:,.0f} decisions/s, p50 {run.p(50):.1f} ms, p99 {run.p(99):.1f} ms, "
        f"200s {run.ok_share:.1f}%; CPU: {cpu}",
        flush=True,
    )


def _server_gc_line(run: HttpRun, window: float) -> str:
    """The server's garbage collections over the diagnostic window (the wrapper's record)."""
    runs = {int(g): (int(n), float(sec)) for g, (n, sec) in run.gc.get("runs", {}).items()}
    seconds = float(run.gc.get("seconds", 0.0))
    server_cpu = run.cpu.get("server", 0.0) / 100 * window
    parts = ", ".join(
        f"gen {g} × {n:,} ({sec / n * 1000:,.1f} ms each)" for g, (n, sec) in sorted(runs.items())
    )
    return (
        "Garbage collection in the server over the same window (`gc.callbacks` in a wrapper "
        "that runs the CLI's `serve` unchanged): "
        f"{parts or 'none'}; {seconds:,.2f} s of CPU in all, "
        f"**{seconds / server_cpu * 100 if server_cpu else 0:.0f}% of the server's CPU**; "
        f"{int(run.gc.get('objects', 0)):,} objects tracked at the end. A full (gen 2) "
        "collection stops every request in flight for its whole length. py-spy charges a "
        "collection to whichever Python frame allocated when it started, so in the tables "
        "above that share is spread over the areas (FastAPI's and SQLAlchemy's object "
        "creation above all)."
    )


def _render_http(
    args: argparse.Namespace,
    model: DemoModel,
    runs: list[HttpRun],
    profiled: HttpRun | None,
    prepared: int,
) -> Part:
    medians = _http_medians(runs)
    chosen = max(medians, key=lambda m: (m.met, m.rps))
    met = chosen.met
    best = chosen.middle

    def verdict(m: HttpMedian) -> str:
        return (
            f"concurrency {m.concurrency} (median of {len(m.runs)}): "
            f"**{m.rps:,.0f} decisions/s** ({_ratio_text(m.rps, TARGET_HTTP_RPS)}), "
            f"p99 **{m.p99:.1f} ms** "
            f"({_ratio_text(m.p99, TARGET_HTTP_P99_MS, lower_is_better=True)}), "
            f"{min(r.ok_share for r in m.runs):.1f}% answered 200 with a decision"
        )

    server_us = best.cpu["server"] / 100 * best.window / best.ok * 1e6 if best.ok else float("nan")
    lines = [
        f"Target (issue): at least {TARGET_HTTP_RPS:,.0f} decisions/s with p99 under "
        f"{TARGET_HTTP_P99_MS:g} ms over HTTP.",
        "",
        f"**Verdict: target {'met' if met else 'missed'}**: "
        + "; ".join(verdict(m) for m in medians)
        + f". The server used {server_us:,.0f} µs of CPU per decision at concurrency "
        f"{best.concurrency} (one core's worth: {1e6 / server_us:,.0f} decisions/s); its "
        f"event-loop thread was at {best.cpu['server event loop']:.0f}% of a core.",
        "",
        *_header(
            args,
            [
                f"- Server: `haetae serve` (uvicorn, uvloop, httptools; SQLite in a temporary "
                f"`HAETAE_DATA_DIR`; `HAETAE_LOG_LEVEL=WARNING`; `HAETAE_MODELS_DIR` with "
                f"model `{model.version}`, {model.trees} trees), a service key from `haetae "
                "keys create --service bench-risk --scope risk`, the demo rules created with "
                "`POST /v1/risk/rules`; a fresh server (data directory, empty feature store) "
                f"for each run; {args.http_repeat} runs per concurrency, judged by their "
                "medians (throughput and p99 apart)",
                f"- Load: this process, aiohttp on uvloop, one session, keep-alive, connector "
                f"limit = concurrency, a closed loop; {args.http_warmup:g} s warm-up then "
                f"{args.http_seconds:g} s measured. Bodies: the simulated Korean stream "
                f"(`seed={args.stream_seed}`) from its first event, in order ({prepared:,} "
                "encoded before the run), as the API's JSON: kind, event_id, customer_id, "
                "occurred_at, amount, currency, card_id, terminal_id, approved, payee "
                "{bank_code, account_number}, device {id, ip} (absent ones left out)",
            ],
        ),
        "",
        "| concurrency | requests | decisions/s | p50 ms | p90 ms | p99 ms | max ms | "
        "200 with a decision | server CPU (event loop) | load generator CPU | others' CPU |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        lines.append(
            f"| {r.concurrency} | {len(r.latencies_ms):,} | **{r.rps:,.0f}** | {r.p(50):.1f} | "
            f"{r.p(90):.1f} | **{r.p(99):.1f}** | {r.p(100):.1f} | {r.ok_share:.1f}% | "
            f"{r.cpu['server']:.0f}% ({r.cpu['server event loop']:.0f}%) | "
            f"{r.cpu['load generator']:.0f}% | {r.cpu['others']:.0f}% |"
        )
    lines += [
        "",
        "Decisions/s: responses 200 with a decision completed in the window ÷ its length; "
        "latency per request, client-side (`perf_counter` around the request, body read "
        "included); a closed loop, so once the server is saturated latency ≈ concurrency ÷ "
        f"throughput. CPU: % of one core over the window ({cpu_source()}; 2 cores = 200%); "
        "others': the machine's busy time (`/proc/stat`) less the server's and the load "
        "generator's. The server's feature store starts empty, so the early events have "
        "short histories (the in-process part measures with full windows), and every payee "
        "is new to it: many more transfers go to review than in the in-process part.",
        "",
        "Statuses and decisions: "
        + "; ".join(
            f"c={r.concurrency}: "
            + ", ".join(f"{code} × {n:,}" for code, n in sorted(r.statuses.items()))
            + " ("
            + ", ".join(f"{d} {r.decisions[d]:,}" for d in DECISIONS)
            + ")"
            + (f", client errors {dict(r.errors)}" if r.errors else "")
            + (" (ran out of prepared events)" if r.exhausted else "")
            for r in runs
        )
        + ".",
    ]
    for r in runs:
        lines += [f"- e.g. {example}" for example in r.examples]
    if profiled is not None and profiled.profiled is not None:
        lines += _profiles_table(
            [profiled.profiled],
            f"Where the server's time goes: one more run on a fresh server (started through "
            f"the GC-recording wrapper below) with py-spy attached to it "
            f"(`record --nonblocking`, 200 Hz, over the "
            f"{args.extra_seconds:g} s window; {profiled.rps:,.0f} decisions/s, not a figure)",
        )
    if profiled is not None and profiled.gc:
        lines += ["", _server_gc_line(profiled, args.extra_seconds)]
    summary = f"http: {'met' if met else 'MISSED'}: " + "; ".join(
        f"c={m.concurrency} {m.rps:,.0f}/s p99 {m.p99:.1f} ms (medians)" for m in medians
    )
    return Part(MEASUREMENTS["http"].title, "\n".join(lines), summary)


# --- main ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    title: str  # its ``###`` heading in RESULTS.md
    run: Callable[[argparse.Namespace, Shared], Part]


MEASUREMENTS: dict[str, Measurement] = {
    "quality": Measurement("Model quality (the handbook's protocol)", measure_quality),
    "speed": Measurement("Engine speed in-process (one core)", measure_speed),
    "http": Measurement("Decisions over HTTP (`POST /v1/risk/evaluate`)", measure_http),
}


def _ints(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--only",
        default=",".join(MEASUREMENTS),
        help=f"comma-separated measurements, of: {', '.join(MEASUREMENTS)}",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print the parts only")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="py-spy run for speed and http: auto = only when the target is missed",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before speed and each http run, wait up to this long for a quiet machine",
    )
    group = parser.add_argument_group("quality")
    group.add_argument(
        "--no-reference", action="store_true", help="skip the same-data reference models"
    )
    group = parser.add_argument_group("speed and http")
    group.add_argument("--models-dir", type=Path, help="use this model instead of training one")
    group.add_argument("--stream-seed", type=int, default=43)
    group.add_argument("--history", type=int, default=300_000, help="events fed to the store")
    group.add_argument("--warmup", type=int, default=2_000, help="events evaluated first")
    group.add_argument("--latency-events", type=int, default=20_000)
    group.add_argument("--events", type=int, default=60_000, help="per concurrent stream")
    group.add_argument("--tasks", type=_ints, default=[64], help="concurrent tasks, e.g. 16,64")
    group.add_argument("--breakdown-events", type=int, default=50_000)
    group.add_argument("--profile-events", type=int, default=20_000)
    group.add_argument("--concurrency", type=_ints, default=[16, 64], help="HTTP, e.g. 16,64")
    group.add_argument("--http-seconds", type=float, default=15.0)
    group.add_argument("--http-repeat", type=int, default=3, help="runs per concurrency")
    group.add_argument("--http-warmup", type=float, default=3.0)
    group.add_argument("--http-events", type=int, default=150_000, help="bodies prepared")
    group.add_argument(
        "--extra-seconds", type=float, default=8.0, help="window of the profiled HTTP run"
    )
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in MEASUREMENTS]
    if unknown or not chosen:
        parser.error(f"--only takes some of {', '.join(MEASUREMENTS)} (got {args.only!r})")

    # The figures are for the defaults: no HAETAE_* setting of this shell may change them.
    for name in [k for k in os.environ if k.startswith("HAETAE_")]:
        del os.environ[name]
    configure_logging("WARNING")
    args.workdir = Path(tempfile.mkdtemp(prefix="haetae-bench-risk-"))
    if args.profile != "never" and not py_spy_argv():
        print("py-spy is not installed: profiles fall back to cProfile (in-process only)")
    shared = Shared(args, args.workdir)
    parts: list[Part] = []
    started = time.monotonic()
    try:
        for name, measurement in MEASUREMENTS.items():
            if name in chosen:
                parts.append(measurement.run(args, shared))
    finally:
        if args.keep:
            print(f"kept: {args.workdir}")
        else:
            shutil.rmtree(args.workdir, ignore_errors=True)
    print(f"\ntotal {time.monotonic() - started:.0f} s\n")
    for part in parts:
        print(f"### {part.title}\n\n{part.body}\n")
    for part in parts:
        print(part.summary)
    if not args.no_write:
        replace_parts(
            args.out,
            HEADING,
            INTRO,
            {part.title: part.body for part in parts},
            [m.title for m in MEASUREMENTS.values()],
        )
        print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
