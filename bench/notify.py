"""Notification dispatch throughput: the dispatcher draining queued deliveries to real
receivers on loopback.

Each measurement is a function of its own (``MEASUREMENTS``; pick some with ``--only``) that
writes its own ``###`` part of the "Notifications" section of RESULTS.md, so a measurement
can be added, or re-run alone, without touching the others' figures:

- ``http``: SMS and push deliveries through the HTTP provider adapter to a provider
  endpoint (``bench/receivers.py http``, a separate process).
- ``smtp``: e-mail deliveries through the SMTP channel to an aiosmtpd server
  (``bench/receivers.py smtp``, a separate process).

For each, N notices are queued once with ``send_notice`` (the real code path: one
notification, one delivery and its "queued" history row each) into a migrated SQLite
database, in a child process, and every run copies it (a fresh database per run). A run
builds the services as ``haetae notify-worker`` does (``build_services``, logs at WARNING,
uvloop) and times ``Dispatcher.drain()`` from start to return. Then it checks that every
delivery ended ``sent`` with a ``sent`` history row, and that the receiver got exactly N
messages with N distinct idempotency keys, the same as the database's delivery ids.

    .venv/bin/python bench/notify.py [--only http,smtp] [--repeat 3] [--profile]
        [--http-deliveries 20000] [--smtp-deliveries 5000] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, cast

from sqlalchemy import event, func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    PYTHON,
    Child,
    PySpy,
    clean_env,
    command_line,
    cpu_seconds,
    cpu_source,
    free_port,
    machine,
    run_async,
    self_cpu_seconds,
    start_child,
    wait_for_port,
)
from haetae.config import Settings
from haetae.db.migrate import upgrade
from haetae.logging import configure_logging
from haetae.notify.channels.base import ChannelName
from haetae.notify.dispatcher import DispatchSettings
from haetae.notify.models import Customer, Delivery, DeliveryEvent
from haetae.notify.notices import send_notice
from haetae.services import Services, build_services, settle_heap
from receivers import key_digest

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## Notifications (bench/notify.py)"
INTRO = (
    "The notification dispatcher draining queued deliveries to real receivers on loopback, "
    "SQLite (the embedded default). Each part below is written by one measurement of "
    "`bench/notify.py` (`--only` re-runs some and keeps the others); see `bench/README.md`."
)
CUSTOMERS = 1000
SEED_CHUNK = 1000  # notices per seeding transaction
SECRET = "bench-provider-secret"


# --- the receivers ---------------------------------------------------------------------


class Receiver:
    """A ``bench/receivers.py`` process, with the port its counts are read from."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.port = free_port()
        self.control_port = self.port if kind == "http" else free_port()
        argv = [PYTHON, str(ROOT / "bench" / "receivers.py"), kind, "--port", str(self.port)]
        if kind != "http":
            argv += ["--control-port", str(self.control_port)]
        self.child: Child = start_child(
            f"receiver-{kind}", argv, env=clean_env({}), log_dir=workdir, cwd=ROOT
        )
        wait_for_port(self.port, self.child)
        wait_for_port(self.control_port, self.child)

    def _call(self, method: str, path: str) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.control_port}{path}", method=method, data=b""
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read())
        return result

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_stats")

    def reset(self) -> None:
        self._call("POST", "/_reset")

    def cpu(self) -> float:
        return cpu_seconds(self.child.pid)

    def stop(self) -> None:
        self.child.stop()


def machine_busy_seconds() -> float:
    """CPU time every process on the machine has used since boot (all cores, /proc/stat):
    what others took of the cores during a run is this, less the benchmark's own."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


QUIET_BELOW = 25.0  # % of one core that other processes may use for the machine to count as quiet


def wait_until_quiet(limit: float) -> None:
    """On a shared machine, wait (at most ``limit`` seconds) for a moment when other
    processes use less than ``QUIET_BELOW``% of a core, measured over 3 s, so that a run
    measures the dispatcher and not its neighbours. Each run reports what others took."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = machine_busy_seconds()
        time.sleep(3.0)
        busy = (machine_busy_seconds() - before) / 3.0 * 100
        if busy < QUIET_BELOW:
            return
        print(f"  waiting for a quiet machine: others use {busy:.0f}% of a core", flush=True)


# --- queueing the notices --------------------------------------------------------------


def bench_settings(data_dir: Path, db_path: Path, **channels: str) -> Settings:
    """The settings ``haetae notify-worker`` would read, with only the channels given."""
    return Settings.model_validate(
        {
            "data_dir": data_dir,
            "database_url": f"sqlite:///{db_path}",
            "log_level": "WARNING",
            "provider_secret": SECRET,
            **channels,
        }
    )


async def _seed(settings: Settings, n: int, channels_of: Callable[[int], tuple[str, ...]]) -> None:
    services = build_services(settings, scores=False)
    now = datetime.now(UTC)
    try:
        async with services.db.transaction() as session:
            for c in range(CUSTOMERS):
                session.add(
                    Customer(
                        id=f"cust-{c}",
                        phone=f"010{c:08d}",
                        email=f"customer{c}@example.com",
                        push_token=f"push-token-{c:06d}",
                        locale="en" if c % 10 == 0 else "ko",  # a tenth read English
                    )
                )
        for start in range(0, n, SEED_CHUNK):
            async with services.db.transaction() as session:
                for i in range(start, min(n, start + SEED_CHUNK)):
                    # A security notice: never rate-limited, sent at any hour.
                    await send_notice(
                        session,
                        services.templates,
                        customer_id=f"cust-{i % CUSTOMERS}",
                        kind="fraud_report_received",
                        category="security",
                        context={
                            "case_id": f"FR-{i:08d}",
                            "received_at": now,
                            "contact_phone": "1599-0000",
                        },
                        now=now,
                        channels=[_channel(c) for c in channels_of(i)],
                    )
    finally:
        await services.stop()


def _channel(name: str) -> ChannelName:
    if name not in ("sms", "push", "email", "inbox"):
        raise ValueError(name)
    return cast(ChannelName, name)


def seed_database(
    workdir: Path, n: int, channels_of: Callable[[int], tuple[str, ...]]
) -> tuple[Path, float]:
    """A migrated database holding ``n`` queued notices; returns it and the seconds it took."""
    path = workdir / "template.db"
    settings = bench_settings(workdir / "data", path)
    started = time.perf_counter()
    upgrade(settings.effective_database_url)
    run_async(_seed(settings, n, channels_of))
    if Path(f"{path}-wal").exists():
        raise RuntimeError("the seeded database was not checkpointed")
    return path, time.perf_counter() - started


def seed_for(key: str, workdir: Path, n: int) -> tuple[Path, float]:
    """``seed_database`` for the measurement ``key``, in a child process."""
    configure_logging("WARNING")
    bench = next(b for b in (HTTP, SMTP) if b.key == key)
    return seed_database(workdir, n, bench.channels_of)


# --- one drain -------------------------------------------------------------------------


@dataclass
class DrainRun:
    deliveries: int = 0  # queued before the run
    elapsed: float = 0.0
    attempted: int = 0  # what drain() returned
    statuses: Counter[str] = field(default_factory=Counter)
    sent_events: int = 0
    receiver: dict[str, Any] = field(default_factory=dict)
    expected_digest: str = ""
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core over the drain
    statements: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    profile: dict[str, float] = field(default_factory=dict)  # area → share of samples
    problems_profile: str = ""  # why there is no profile
    helpers_cpu: float = 0.0  # CPU seconds of the other workers' drains

    @property
    def rate(self) -> float:
        return self.deliveries / self.elapsed if self.elapsed else 0.0

    @property
    def cpu_per_delivery_us(self) -> float:
        """The dispatcher's CPU per delivery: what bounds a worker on one core."""
        if not self.deliveries:
            return 0.0
        return self.cpu["dispatcher"] / 100 * self.elapsed / self.deliveries * 1e6


def _statement_name(statement: str) -> str:
    words = statement.replace("(", " ").split()
    verb = words[0].upper() if words else "?"
    upper = [w.upper() for w in words]
    if verb in ("SELECT", "WITH") and "FROM" in upper:
        return f"SELECT {words[upper.index('FROM') + 1]}"
    if verb in ("INSERT", "DELETE") and len(words) > 2:
        return f"{verb} {words[2]}"
    if verb == "UPDATE" and len(words) > 1:
        return f"UPDATE {words[1]}"
    return " ".join(words[:2])


# Where a profiled run's time goes: each py-spy sample is charged to its innermost frame in
# one of these (matched in "function (file:line)", first match wins); frames of the
# standard library (json, hmac, base64, email, re) go to their caller.
AREAS: tuple[tuple[str, str], ...] = (
    ("haetae/notify/channels/http", "HTTP provider channel (http11, JSON, signature)"),
    ("haetae/notify/channels/smtp", "SMTP channel (building the e-mail)"),
    ("aiosmtplib/", "SMTP client (aiosmtplib)"),
    ("haetae/notify/templates", "templates (Jinja)"),
    ("jinja2/", "templates (Jinja)"),
    ("markupsafe/", "templates (Jinja)"),
    (".j2:", "templates (Jinja)"),
    ("haetae/notify/dispatcher", "dispatcher (claim, send loop, record)"),
    ("haetae/notify/notices", "dispatcher (claim, send loop, record)"),
    ("sqlalchemy/", "database (SQLAlchemy, SQLite)"),
    ("haetae/db/", "database (SQLAlchemy, SQLite)"),
    ("structlog/", "logging (filtered out)"),
    ("asyncio/", "event loop and tasks (asyncio, uvloop)"),
    ("uvloop/", "event loop and tasks (asyncio, uvloop)"),
)
PY_SPY_RATE = 250  # samples per second


def _areas(raw: str) -> dict[str, float]:
    """Share of samples by area, from py-spy's raw output ("frame;frame;... count")."""
    samples: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = reversed(stack.split(";"))  # innermost first
        area = next((name for frame in frames for key, name in AREAS if key in frame), "other")
        samples[area] += int(count)
    total = sum(samples.values()) or 1
    return {area: n / total * 100 for area, n in samples.most_common()}


async def _drain(
    settings: Settings,
    receiver: Receiver,
    result: DrainRun,
    *,
    profile: bool = False,
    others: Sequence[Future[tuple[int, float]]] = (),
    go: Path | None = None,
) -> None:
    """Drain in this process; with ``others`` (workers in processes of their own, waiting
    for the ``go`` file), all of them at once, timed until the last one is done."""
    services: Services = build_services(settings, scores=False)
    settle_heap()  # as `haetae notify-worker` does after start-up
    engine = services.db.engine.sync_engine

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        result.statements[_statement_name(statement)] += 1

    try:
        async with services.db.sessions() as session:
            ids = list((await session.scalars(select(Delivery.id))).all())
        result.deliveries = len(ids)
        result.expected_digest = key_digest(ids)
        event.listen(engine, "before_cursor_execute", count)
        spy = _start_py_spy(result) if profile else None
        try:
            if spy is not None:
                await asyncio.sleep(1.0)  # py-spy attaching
            if go is not None:  # the others' start-up is not part of the drain
                await asyncio.to_thread(_start_together, go, len(others))
            receiver_cpu, own_cpu = receiver.cpu(), self_cpu_seconds()
            all_cpu = machine_busy_seconds()
            started = time.perf_counter()
            result.attempted = await services.dispatcher.drain()
            helped = [await asyncio.wrap_future(f) for f in others]
            result.elapsed = time.perf_counter() - started
            result.attempted += sum(attempted for attempted, _ in helped)
            result.helpers_cpu = sum(cpu for _, cpu in helped)
        finally:
            if spy is not None:
                _stop_py_spy(spy, result)
        own = self_cpu_seconds() - own_cpu + result.helpers_cpu
        theirs = receiver.cpu() - receiver_cpu
        result.cpu = {
            "dispatcher": own / result.elapsed * 100,
            "receiver": theirs / result.elapsed * 100,
            # Anything else running on the machine meanwhile (it shares the two cores).
            "others": max(0.0, machine_busy_seconds() - all_cpu - own - theirs)
            / result.elapsed
            * 100,
        }
        event.remove(engine, "before_cursor_execute", count)
        async with services.db.sessions() as session:
            rows = await session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            )
            result.statuses = Counter({status: n for status, n in rows})
            result.sent_events = (
                await session.scalar(
                    select(func.count())
                    .select_from(DeliveryEvent)
                    .where(DeliveryEvent.status == "sent")
                )
                or 0
            )
    finally:
        await services.stop()


def _start_py_spy(result: DrainRun) -> PySpy | None:
    output = Path(tempfile.mkdtemp(prefix="py-spy-")) / "raw.txt"
    spy = PySpy.start(os.getpid(), output, rate=PY_SPY_RATE)
    if spy is None:
        result.problems_profile = "py-spy is not installed (`.venv/bin/pip install py-spy`)"
    return spy


def _stop_py_spy(spy: PySpy, result: DrainRun) -> None:
    raw, why = spy.stop()
    if raw:
        result.profile = _areas(raw)
    else:
        result.problems_profile = f"py-spy recorded nothing: {why}"
    shutil.rmtree(spy.output.parent, ignore_errors=True)


def drain_once(
    template: Path,
    workdir: Path,
    receiver: Receiver,
    channels: Mapping[str, str],
    *,
    profile: bool = False,
    workers: int = 1,
) -> DrainRun:
    """Copy the seeded database, drain it (with ``workers`` dispatchers, this process's
    and others each in a process of its own), check that nothing was lost or repeated."""
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    db_path = run_dir / "haetae.db"
    shutil.copyfile(template, db_path)
    receiver.reset()
    result = DrainRun()
    settings = bench_settings(run_dir / "data", db_path, **channels)
    go = run_dir / "go"
    with ProcessPoolExecutor(
        max_workers=max(workers - 1, 1), mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        others = [
            pool.submit(_other_worker, str(run_dir), str(db_path), dict(channels), n)
            for n in range(workers - 1)
        ]
        run_async(
            _drain(
                settings,
                receiver,
                result,
                profile=profile,
                others=others,
                go=go if others else None,
            )
        )
    result.receiver = receiver.stats()
    n = result.deliveries
    if result.statuses.get("sent", 0) != n:
        result.problems.append(f"statuses after the drain: {dict(result.statuses)}")
    if result.sent_events != n:
        result.problems.append(f"{result.sent_events:,} 'sent' history rows for {n:,}")
    got = result.receiver
    if got["received"] != n or got["distinct"] != n:
        result.problems.append(
            f"receiver got {got['received']:,} messages, {got['distinct']:,} distinct, for {n:,}"
        )
    if got["digest"] != result.expected_digest:
        result.problems.append("the receiver's keys are not the database's delivery ids")
    shutil.rmtree(run_dir, ignore_errors=True)
    return result


def _start_together(go: Path, count: int, timeout: float = 120.0) -> None:
    """Once ``count`` other workers say they are ready, tell them all to go."""
    deadline = time.monotonic() + timeout
    while len(list(go.parent.glob("ready-*"))) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only some of {count} workers started in {timeout:.0f} s")
        time.sleep(0.01)
    go.touch()


def _ready_then_wait(folder: Path, n: int) -> None:
    (folder / f"ready-{n}").touch()
    while not (folder / "go").exists():
        time.sleep(0.001)


def _other_worker(
    run_dir: str, db_path: str, channels: dict[str, str], n: int
) -> tuple[int, float]:
    """One more dispatcher, as a second `haetae notify-worker` on the same database: it
    starts up, says it is ready, waits for the go file, drains; (attempted, CPU seconds)."""
    configure_logging("WARNING")
    folder = Path(run_dir)
    settings = bench_settings(folder / f"data-{n}", Path(db_path), **channels)

    async def work() -> tuple[int, float]:
        services = build_services(settings, scores=False)  # as `haetae notify-worker`
        settle_heap()
        try:
            await asyncio.to_thread(_ready_then_wait, folder, n)
            before = self_cpu_seconds()
            attempted = await services.dispatcher.drain()
            return attempted, self_cpu_seconds() - before
        finally:
            await services.stop()

    result: tuple[int, float] = run_async(work())
    return result


# --- measurements ----------------------------------------------------------------------


@dataclass
class Part:
    """One measurement's ``###`` part of the section."""

    title: str
    body: str
    summary: str  # one line for the console


@dataclass(frozen=True)
class DeliveryBench:
    key: str
    title: str
    target: float  # deliveries/s
    what: str  # what is delivered, for the text
    work: str  # the notices queued, for the text
    receiver_kind: str
    channels_of: Callable[[int], tuple[str, ...]]
    settings_for: Callable[[Receiver], dict[str, str]]
    deliveries: Callable[[argparse.Namespace], int]


def _run_delivery_bench(bench: DeliveryBench, args: argparse.Namespace, workdir: Path) -> Part:
    n = bench.deliveries(args)
    print(f"{bench.key}: queueing {n:,} notices ...", flush=True)
    # In a process of its own: queueing 20,000 notices through the ORM leaves this one's
    # heap larger and more scattered, which measurably slowed the drains that followed; the
    # dispatcher's process should look like a worker's, which has only started up.
    with ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        template, seed_seconds = pool.submit(seed_for, bench.key, workdir, n).result()
    print(f"  {seed_seconds:.1f} s", flush=True)
    receiver = Receiver(bench.receiver_kind, workdir)
    runs: list[DrainRun] = []
    profiled: DrainRun | None = None
    try:
        for number in range(1, args.repeat + 1):
            wait_until_quiet(args.wait_quiet)
            result = drain_once(
                template, workdir, receiver, bench.settings_for(receiver), workers=args.workers
            )
            runs.append(result)
            _print_run(f"run {number}", result)
        if args.profile:
            profiled = drain_once(
                template,
                workdir,
                receiver,
                bench.settings_for(receiver),
                profile=True,
                workers=args.workers,
            )
            _print_run("profiled run (py-spy attached; not a figure)", profiled)
    finally:
        receiver.stop()
    return _render_delivery_part(bench, args, runs, seed_seconds, profiled)


def _print_run(label: str, result: DrainRun) -> None:
    print(
        f"  {label}: {result.rate:,.0f} deliveries/s ({result.elapsed:.2f} s), "
        f"{result.cpu_per_delivery_us:.0f} µs of dispatcher CPU each; CPU: dispatcher "
        f"{result.cpu['dispatcher']:.0f}%, receiver {result.cpu['receiver']:.0f}%, "
        f"other processes {result.cpu['others']:.0f}%"
        + (f"; PROBLEMS: {'; '.join(result.problems)}" if result.problems else ""),
        flush=True,
    )


def _render_delivery_part(
    bench: DeliveryBench,
    args: argparse.Namespace,
    runs: Sequence[DrainRun],
    seed_seconds: float,
    profiled: DrainRun | None,
) -> Part:
    info = machine()
    median = statistics.median(r.rate for r in runs)
    failed = [p for r in runs for p in r.problems]
    met = median >= bench.target and not failed
    ratio = median / bench.target
    if median >= bench.target:
        against = f"{ratio:.2f}× the {bench.target:,.0f}/s target"
    else:
        against = (
            f"{(1 - ratio) * 100:.0f}% short of the {bench.target:,.0f}/s target "
            f"(it needs {1 / ratio:.2f}× more)"
        )
    verdict = f"**{median:,.0f} deliveries/s** (median of {len(runs)} runs), {against}"
    if failed:
        verdict += f"; {len(failed)} check(s) failed: " + "; ".join(failed[:5])
    n = runs[0].deliveries
    cpu_each = statistics.median(r.cpu_per_delivery_us for r in runs)
    others = statistics.median(r.cpu["others"] for r in runs)
    lines = [
        f"Target (issue): at least {bench.target:,.0f} {bench.what} deliveries/s.",
        "",
        f"**Verdict: target {'met' if met else 'missed'}**: {verdict}. The dispatcher used "
        f"{cpu_each:,.0f} µs of CPU per delivery (one core's worth: "
        f"{1e6 / cpu_each:,.0f} deliveries/s); other processes on the machine took "
        f"{others:.0f}% of a core meanwhile (median).",
        "",
        f"- Date: {info['date']}",
        f"- Command: `{command_line()}`",
        f"- Machine: {info['cpus']} × {info['cpu_model']}, {info['memory']} RAM, {info['os']}",
        f"- Software: {info['python']}; {_versions()}",
        f"- Work: {n:,} deliveries per run ({bench.work}), queued once with `send_notice` "
        f"({seed_seconds:.1f} s) into a migrated SQLite database that each run copies; "
        f"dispatcher settings {_dispatch_settings()}"
        + (
            f"; **{args.workers} workers** (this process and {args.workers - 1} more, each "
            "a dispatcher of its own on the same database, as `haetae notify-worker` scales "
            "out)"
            if args.workers > 1
            else "; one worker"
        ),
        "",
        "| run | seconds | deliveries/s | dispatcher CPU | CPU per delivery | receiver CPU | "
        "other processes' CPU | SQL statements (transactions) per 100 deliveries | "
        "all sent, with history; receiver got each once |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for number, run in enumerate(runs, start=1):
        begins = sum(v for k, v in run.statements.items() if k.startswith("BEGIN"))
        statements = sum(run.statements.values()) - begins
        ok = "yes" if not run.problems else "NO: " + "; ".join(run.problems)
        lines.append(
            f"| {number} | {run.elapsed:.2f} | **{run.rate:,.0f}** | "
            f"{run.cpu['dispatcher']:.0f}% | {run.cpu_per_delivery_us:,.0f} µs | "
            f"{run.cpu['receiver']:.0f}% | {run.cpu['others']:.0f}% | "
            f"{statements / n * 100:.1f} ({begins / n * 100:.1f}) | {ok} |"
        )
    top = runs[len(runs) // 2].statements
    together = (
        "; with several workers, from the moment they are all told to go until the last "
        "one's `drain()` returns, the CPU being all of theirs and the SQL this process's"
        if args.workers > 1
        else ""
    )
    lines += [
        "",
        "Seconds: `Dispatcher.drain()` from call to return, in this process, which runs the "
        "dispatcher alone (`build_services` as `haetae notify-worker` does, on uvloop, logs at "
        f"WARNING){together}. CPU: % of one core over the drain ({cpu_source()}; 2 cores = "
        "200%); "
        "other processes': the machine's busy time (`/proc/stat`) less the dispatcher's and "
        "the receiver's, i.e. whatever else ran on the two cores meanwhile. SQL: statements "
        "the engine executed during the drain (SQLAlchemy `before_cursor_execute`; an "
        "`executemany` counts once), and in brackets the transactions (`BEGIN`); the middle "
        "run's: " + ", ".join(f"`{name}` {count:,}" for name, count in top.most_common(8)) + ".",
    ]
    if profiled is not None and not profiled.profile:
        lines += ["", f"No profile: {profiled.problems_profile}."]
    elif profiled is not None:
        lines += [
            "",
            f"Where the dispatcher's time goes: one more run with py-spy attached "
            f"(`record --nonblocking`, {PY_SPY_RATE} Hz; {profiled.rate:,.0f} deliveries/s, "
            "not a figure). Each sample of this process's Python stack is charged to its "
            "innermost frame in one of these areas (standard-library frames, such as json, "
            "hmac, base64 or email, to their caller); time in C under a frame (SQLite, "
            "socket writes, the parsers) counts for it:",
            "",
            "| area | share of samples |",
            "| --- | ---: |",
        ]
        lines += [
            f"| {area} | {share:.1f}% |" for area, share in profiled.profile.items() if share >= 1
        ]
    return Part(
        bench.title, "\n".join(lines), f"{bench.key}: {'met' if met else 'MISSED'}: {verdict}"
    )


def _dispatch_settings() -> str:
    defaults = DispatchSettings()
    return f"batch {defaults.batch}, concurrency {defaults.concurrency}"


def _versions() -> str:
    found = []
    for package in ("sqlalchemy", "httptools", "uvloop", "aiosmtplib", "aiosmtpd", "jinja2"):
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def _http_channels(i: int) -> tuple[str, ...]:
    return ("push",) if i % 2 else ("sms",)  # half push, half SMS


HTTP = DeliveryBench(
    key="http",
    title="HTTP provider (SMS and push)",
    target=5000.0,
    what="SMS/push (HTTP provider adapter → an HTTP receiver on loopback)",
    work="a security notice each, `fraud_report_received`, half on push and half on SMS, "
    "to 1,000 customers, a tenth of them in English",
    receiver_kind="http",
    channels_of=_http_channels,
    settings_for=lambda r: {
        "sms_provider_url": f"http://127.0.0.1:{r.port}/sms",
        "push_provider_url": f"http://127.0.0.1:{r.port}/push",
    },
    deliveries=lambda args: int(args.http_deliveries),
)

SMTP = DeliveryBench(
    key="smtp",
    title="SMTP (e-mail)",
    target=1000.0,
    what="e-mail (SMTP channel → aiosmtpd on loopback, connections reused)",
    work="a security notice each, `fraud_report_received`, by e-mail (text and HTML parts), "
    "to 1,000 customers, a tenth of them in English",
    receiver_kind="smtp",
    channels_of=lambda i: ("email",),
    settings_for=lambda r: {"smtp_url": f"smtp://127.0.0.1:{r.port}"},
    deliveries=lambda args: int(args.smtp_deliveries),
)


def measure_http(args: argparse.Namespace, workdir: Path) -> Part:
    return _run_delivery_bench(HTTP, args, workdir)


def measure_smtp(args: argparse.Namespace, workdir: Path) -> Part:
    return _run_delivery_bench(SMTP, args, workdir)


# --- planning reminders for a million certificates ---------------------------------------

PLAN_TARGET_SECONDS = 60.0


def _load_certificates(db_path: Path, n: int) -> float:
    """``n`` active certificates expiring over the next year (as an import leaves them),
    without reminders; returns the seconds it took (not a figure: the setting-up)."""
    from datetime import timedelta

    from sqlalchemy import insert

    from haetae.certificates.models import Certificate
    from haetae.db.engine import Database

    url = f"sqlite:///{db_path}"
    upgrade(url)
    started = time.perf_counter()

    async def load() -> None:
        db = Database(url)
        now = datetime.now(UTC)
        batch: list[dict[str, Any]] = []
        try:
            for i in range(n):
                batch.append(
                    {
                        "id": f"crt_{i:012d}",
                        "customer_id": f"c-{i}",
                        "kind": "joint" if i % 4 else "financial",
                        "source": "metadata",
                        "device_id": "phone",
                        "status": "active",
                        "issued_at": now - timedelta(days=i % 365),
                        # spread over a year, at any minute of the day
                        "not_after": now + timedelta(days=365 - i % 365, minutes=i % 1440),
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                if len(batch) == 50_000 or i == n - 1:
                    async with db.transaction() as session:
                        await session.execute(insert(Certificate), batch)
                    batch = []
        finally:
            await db.dispose()

    run_async(load())
    return time.perf_counter() - started


@dataclass
class PlanRun:
    seconds: float = 0.0
    rows: int = 0
    certificates_planned: int = 0
    cpu_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def _plan_once(template: Path, workdir: Path, n: int) -> PlanRun:
    from haetae.certificates.models import CertificateReminder
    from haetae.certificates.reminders import plan_missing
    from haetae.certificates.settings import CertificateSettings
    from haetae.db.engine import Database

    run_dir = Path(tempfile.mkdtemp(prefix="plan-", dir=workdir))
    db_path = run_dir / "haetae.db"
    shutil.copyfile(template, db_path)
    result = PlanRun()

    async def plan() -> None:
        db = Database(f"sqlite:///{db_path}")
        try:
            cpu = self_cpu_seconds()
            started = time.perf_counter()
            result.rows = await plan_missing(db, CertificateSettings(), datetime.now(UTC))
            result.seconds = time.perf_counter() - started
            result.cpu_seconds = self_cpu_seconds() - cpu
            async with db.sessions() as session:
                stored = await session.scalar(select(func.count()).select_from(CertificateReminder))
                result.certificates_planned = int(
                    await session.scalar(
                        select(func.count(func.distinct(CertificateReminder.certificate_id)))
                    )
                    or 0
                )
            if stored != result.rows:
                result.problems.append(f"{stored:,} rows stored for {result.rows:,} planned")
            if result.certificates_planned != n:
                result.problems.append(
                    f"{result.certificates_planned:,} of {n:,} certificates have reminders"
                )
        finally:
            await db.dispose()

    run_async(plan())
    shutil.rmtree(run_dir, ignore_errors=True)
    return result


def measure_plan(args: argparse.Namespace, workdir: Path) -> Part:
    n = int(args.certificates)
    template = workdir / "certificates.db"
    load_seconds = _load_certificates(template, n)
    runs = []
    for index in range(args.repeat):
        if args.wait_quiet:
            wait_until_quiet(args.wait_quiet)
        run = _plan_once(template, workdir, n)
        print(f"plan run {index + 1}: {run.seconds:.1f} s, {run.rows:,} reminders", flush=True)
        runs.append(run)
    median = statistics.median(r.seconds for r in runs)
    failed = [p for r in runs for p in r.problems]
    met = median < PLAN_TARGET_SECONDS and not failed and n >= 1_000_000
    ratio = PLAN_TARGET_SECONDS / median
    verdict = (
        f"**{median:.1f} s** for {n:,} certificates (median of {len(runs)} runs), "
        f"{ratio:.2f}× faster than the {PLAN_TARGET_SECONDS:.0f} s target"
        if median < PLAN_TARGET_SECONDS
        else f"**{median:.1f} s** for {n:,} certificates, {median / PLAN_TARGET_SECONDS:.2f}× "
        f"the {PLAN_TARGET_SECONDS:.0f} s target"
    )
    if failed:
        verdict += f"; {len(failed)} check(s) failed: " + "; ".join(failed[:5])
    info = machine()
    lines = [
        f"Target (issue): reminders for 1,000,000 certificates planned in under "
        f"{PLAN_TARGET_SECONDS:.0f} s on SQLite.",
        "",
        f"**Verdict: target {'met' if met else 'missed'}**: {verdict}; "
        f"{statistics.median(r.rows for r in runs):,.0f} reminder rows (D-30, D-7, D-1 and "
        "the day, of those still ahead, plus the latest already due), every certificate "
        "planned.",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Command: `{command_line()}`",
        f"- Machine: {info['cpus']} × {info['cpu_model']}, {info['memory']} RAM, {info['os']}",
        f"- Setting up (not timed): {n:,} active certificates expiring over the next year, "
        f"inserted in {load_seconds:.1f} s into a migrated SQLite file that each run copies.",
        "",
        "| run | seconds | reminders planned | certificates planned | CPU seconds |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {i} | {r.seconds:.1f} | {r.rows:,} | {r.certificates_planned:,} | {r.cpu_seconds:.1f} |"
        for i, r in enumerate(runs, 1)
    ]
    lines += [
        "",
        "Seconds: `haetae.certificates.reminders.plan_missing` from call to return — what "
        "`haetae certs import` and a change of reminder days run: pages of 20,000 "
        "certificates lacking reminders for their expiry, one transaction each, the due times "
        "computed in Python (cached per expiry date) and written with one `executemany`.",
    ]
    return Part(
        "Planning reminders for 1,000,000 certificates",
        "\n".join(lines),
        f"plan: {'met' if met else 'MISSED'}: {verdict}",
    )


@dataclass(frozen=True)
class Measurement:
    title: str  # its ``###`` heading in RESULTS.md
    run: Callable[[argparse.Namespace, Path], Part]


# One function per measurement, in the order their parts appear in RESULTS.md.
MEASUREMENTS: dict[str, Measurement] = {
    "http": Measurement(HTTP.title, measure_http),
    "smtp": Measurement(SMTP.title, measure_smtp),
    "plan": Measurement("Planning reminders for 1,000,000 certificates", measure_plan),
}


# --- RESULTS.md ------------------------------------------------------------------------


def write_parts(path: Path, parts: Sequence[Part]) -> None:
    """Replace (or add) each part's ``###`` subsection of the Notifications section, keeping
    the parts of measurements that did not run, and everything outside the section."""
    from common import replace_parts

    replace_parts(
        path,
        HEADING,
        INTRO,
        {part.title: part.body for part in parts},
        [m.title for m in MEASUREMENTS.values()],
    )


# --- main ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--only",
        default=",".join(MEASUREMENTS),
        help=f"comma-separated measurements to run, of: {', '.join(MEASUREMENTS)}",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="dispatchers draining at once (http, smtp): this process and others of their own",
    )
    parser.add_argument("--http-deliveries", type=int, default=20_000)
    parser.add_argument("--smtp-deliveries", type=int, default=5_000)
    parser.add_argument("--certificates", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print the parts only")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help=f"before each run, wait up to this long for other processes to use under "
        f"{QUIET_BELOW:.0f}%% of a core (a shared machine)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="one more run per measurement with py-spy attached: where the time goes",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in MEASUREMENTS]
    if unknown or not chosen:
        parser.error(f"--only takes some of {', '.join(MEASUREMENTS)} (got {args.only!r})")

    # The figures are for the defaults: no HAETAE_* setting of this shell may change them.
    for name in [k for k in os.environ if k.startswith("HAETAE_")]:
        del os.environ[name]
    configure_logging("WARNING")
    workdir = Path(tempfile.mkdtemp(prefix="haetae-bench-notify-"))
    parts: list[Part] = []
    try:
        for name in MEASUREMENTS:
            if name in chosen:
                (workdir / name).mkdir()
                parts.append(MEASUREMENTS[name].run(args, workdir / name))
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    for part in parts:
        print(f"### {part.title}\n\n{part.body}\n")
    for part in parts:
        print(part.summary)
    if not args.no_write:
        write_parts(args.out, parts)
        print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
