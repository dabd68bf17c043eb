"""Fraud detection on a replayed stream, in batch, on one core: events decided per second.

The issue's throughput target (at least 20,000 events/s on one core) for a replayed stream.
A replay (``haetae risk replay``, ``haetae.risk.replay``) decides every event of a history
as the online engine would, one by one from an empty feature store (a unit test holds the
two equal, event by event): features computed column-wise (the offline computation), the
model over every row in one call (score and reason codes), the rules as Polars expressions.
It stores nothing; the online engine's figures (one event at a time, and concurrent
`evaluate` calls that each store their decision) are bench/risk.py's.

What it does: the simulated Korean stream (every kind of event, seed 43, as bench/risk.py)
and the demo model (trained here as ``serve --demo`` does, or ``--models-dir``) and the demo
rules; this process pinned to one CPU, Polars with one thread (set before it is imported)
and LightGBM with one; ``--repeat`` replays of the first ``--events`` events (median), then
the steps timed apart once. Writes its section of ``--out`` unless ``--no-write``.

    .venv/bin/python bench/replay.py [--events 1000000] [--repeat 3] [--models-dir DIR]
"""

from __future__ import annotations

import os

os.environ["POLARS_MAX_THREADS"] = "1"  # read when Polars is imported: one core, one thread

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    command_line,
    machine,
    package_versions,
    quietest_cpu,
    replace_section,
)
from haetae.config import Settings
from haetae.demo import DEMO_RULES
from haetae.risk.events import EVENT_SCHEMA
from haetae.risk.features import FEATURE_NAMES
from haetae.risk.features.definitions import feature_types
from haetae.risk.features.offline import OfflineFeatures
from haetae.risk.model.scorer import Scorer
from haetae.risk.model.train import matrix
from haetae.risk.replay import DECISION, replay
from haetae.risk.rules.ruleset import RuleSet, compile_rule
from haetae.risk.rules.validate import parse_rule
from haetae.simulate.run import Profile, simulate

HEADING = "## Fraud detection: a replayed stream in batch (bench/replay.py)"
TARGET = 20_000


def demo_rules() -> RuleSet:
    compiled = [
        compile_rule(name, 1, parse_rule(text, feature_types(), []), kinds or None)
        for name, text, kinds in DEMO_RULES
    ]
    return RuleSet(compiled, {})


def load_model(models_dir: str | None, workdir: Path) -> Scorer:
    if models_dir is None:
        from haetae.risk.bootstrap import ensure_demo_model

        print("training the demo model (as `serve --demo` does) ...", flush=True)
        settings = Settings.model_validate({"data_dir": workdir, "log_level": "WARNING"})
        ensure_demo_model(settings)
        models_dir = str(settings.effective_models_dir)
    return Scorer.load(Path(models_dir), "latest", FEATURE_NAMES)


def steps(events: pl.DataFrame, scorer: Scorer) -> dict[str, float]:
    """CPU µs per event of each step a replay takes, timed apart (one run)."""
    timed: dict[str, float] = {}

    def clock(name: str, started: float) -> None:
        timed[name] = 1e6 * (time.process_time() - started) / events.height

    t = time.process_time()
    featured = OfflineFeatures().compute(events)
    clock("features (offline computation)", t)
    t = time.process_time()
    values = matrix(featured, scorer.feature_names)
    clock("feature matrix", t)
    t = time.process_time()
    scorer.score_matrix(values)
    clock("model: contributions, score, reason codes", t)
    return timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models-dir")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="haetae-bench-replay-"))
    scorer = load_model(args.models_dir, workdir)
    rules = demo_rules()
    print("simulating the Korean stream (seed 43) ...", flush=True)
    stream = simulate(Profile.KOREAN, seed=43)
    events = stream.head(args.events).select(list(EVENT_SCHEMA))
    info = machine()  # before pinning: it reads the CPUs this process may use
    cpu, busy = quietest_cpu(sorted(os.sched_getaffinity(0)))
    os.sched_setaffinity(0, {cpu})
    print(
        f"pinned to CPU {cpu} (others used {busy:.0f}% of it); Polars threads: "
        f"{pl.thread_pool_size()}",
        flush=True,
    )

    walls, cpus = [], []
    decided = pl.DataFrame()
    for run in range(args.repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        decided = replay(events, scorer=scorer, rules=rules)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_started)
        print(f"  run {run + 1}: {events.height / walls[-1]:,.0f} events/s", flush=True)
    timed = steps(events, scorer)

    wall, cpu_time = statistics.median(walls), statistics.median(cpus)
    rate = events.height / wall
    met = rate >= TARGET
    counts = dict(decided.group_by(DECISION).len().iter_rows())
    lines = [
        f"Target (issue): at least {TARGET:,} events/s on one core for a replayed stream "
        "(features + rules + model).",
        "",
        f"**Verdict: target {'met' if met else 'missed'}**: {rate:,.0f} events/s "
        f"({rate / TARGET:.2f}× the target; median of {args.repeat} replays of "
        f"{events.height:,} events), {1e6 * cpu_time / events.height:.1f} µs of CPU per event.",
        "",
        "This is the batch replay (`haetae risk replay`, `haetae.risk.replay`): the decision "
        "every event would get from the online engine fed the same stream from an empty "
        "feature store (`tests/unit/test_risk_replay.py` compares the two, event by event: "
        "decision, score, rule hits, reason codes), computed column-wise; it stores no "
        "decision. The online engine, deciding and storing one event per call, is "
        "bench/risk.py's (section above): it does not reach this target.",
        "",
        f"- Date: {info['date']}",
        f"- Command: `{command_line()}`",
        f"- Machine: {info['cpus']} × {info['cpu_model']}, {info['memory']} RAM, {info['os']}",
        f"- Software: {info['python']}; " + package_versions(["polars", "lightgbm", "numpy"]),
        f"- One core: this process pinned to CPU {cpu} (`sched_setaffinity`; others used "
        f"{busy:.0f}% of it before), `POLARS_MAX_THREADS=1`, LightGBM `num_threads=1`",
        f"- Model: `{scorer.version}` ({scorer.model.booster.num_trees()} trees, "
        f"{len(scorer.feature_names)} features); rules: the demo rules (`haetae.demo.DEMO_RULES`)",
        f"- Stream: `simulate(Profile.KOREAN, seed=43)`, its first {events.height:,} events "
        "(every kind), in time order",
        "",
        "| replay | events | wall s | events/s | CPU µs per event |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for run, (w, c) in enumerate(zip(walls, cpus, strict=True), start=1):
        lines.append(
            f"| {run} | {events.height:,} | {w:.2f} | {events.height / w:,.0f} | "
            f"{1e6 * c / events.height:.1f} |"
        )
    lines += [
        "",
        "Steps timed apart (one run each; the rules and the assembly of the result are the "
        "rest of the replay's time):",
        "",
        "| step | CPU µs per event |",
        "| --- | ---: |",
        *(f"| {name} | {value:.1f} |" for name, value in timed.items()),
        "",
        "Decisions: "
        + ", ".join(f"{d} {counts.get(d, 0):,}" for d in ("allow", "challenge", "review", "block"))
        + ".",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        replace_section(args.out, HEADING, body)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
