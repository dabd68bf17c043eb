"""Payments throughput and latency over HTTP, against a real server and issuer simulator.

Starts ``haetae issuer-sim`` and ``haetae serve`` (SQLite in a temporary data directory,
``HAETAE_LOG_LEVEL=WARNING``), creates a merchant key with ``haetae keys create``, and drives
``POST /v1/payments`` from this process with a closed-loop aiohttp client (one session,
keep-alive, connector limit = concurrency) for a fixed time after a warm-up. Every response's
status code and outcome is checked against what its test card must produce; mismatches are
counted and reported, never counted as throughput.

Runs, each on a fresh stack: the main configuration (``--concurrency``, 32), the same at
concurrency 8, an open loop (payments sent at ``--rate``, 1,000/s, as Poisson arrivals,
each timed from the moment it was due), the main one with the server pinned alone to one
core, and, when the target is missed (or with ``--profile always``), a diagnostic run:
py-spy on the server and a count of the SQL statements and transactions per payment.

    .venv/bin/python bench/payments.py [--seconds 20] [--concurrency 32] [--warmup 3]
        [--rate 1000] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis
import sqlalchemy

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    PYTHON,
    Child,
    clean_env,
    command_line,
    cpu_seconds,
    cpu_source,
    free_port,
    machine,
    percentile,
    py_spy_argv,
    replace_section,
    run_async,
    self_cpu_seconds,
    start_child,
    thread_cpu_seconds,
    tree_cpu_seconds,
    wait_for_http,
    wait_for_port,
)

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## Payments (bench/payments.py)"
TARGET_RPS = 1000.0
TARGET_P99_MS = 50.0
LOW_CONCURRENCY = 8
OPEN_LOOP_CONNECTIONS = 256
PY_SPY_RATE = 200  # samples per second


# --- the card mix --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardCase:
    label: str
    number: str
    exp_year: int
    weight: int  # out of 20
    status: int  # the HTTP status the API must answer with
    outcome: str  # the body's "status"
    error_code: str | None  # the body's error.code


CASES: tuple[CardCase, ...] = (
    CardCase("approve, Visa 4242…", "4242 4242 4242 4242", 2030, 7, 201, "approved", None),
    CardCase("approve, Mastercard 5555…", "5555555555554444", 2030, 7, 201, "approved", None),
    CardCase(
        "insufficient funds (issuer 51)",
        "4000000000009995",
        2030,
        2,
        402,
        "declined",
        "insufficient_funds",
    ),
    CardCase(
        "wrong CVC (issuer N7 + C)", "4000000000000127", 2030, 1, 402, "declined", "cvc_mismatch"
    ),
    CardCase(
        "Luhn-invalid (rejected locally)",
        "4242424242424241",
        2030,
        1,
        402,
        "failed",
        "card_number_invalid",
    ),
    CardCase(
        "expired 12/2020 (rejected locally)",
        "4242424242424242",
        2020,
        1,
        402,
        "failed",
        "card_expired",
    ),
    CardCase(
        "generic decline (issuer 05)",
        "4000000000000002",
        2030,
        1,
        402,
        "declined",
        "card_declined",
    ),
)
assert sum(case.weight for case in CASES) == 20


def _sequence() -> tuple[CardCase, ...]:
    """The 20-slot cycle every run sends in the same order (a fixed, seeded shuffle)."""
    slots = [case for case in CASES for _ in range(case.weight)]
    random.Random(8583).shuffle(slots)
    return tuple(slots)


SEQUENCE = _sequence()


def payment_body(case: CardCase, i: int, tag: str) -> dict[str, Any]:
    """The body of ``POST /v1/payments`` (as in tests/helpers.py), unique per request.

    Amounts are KRW 1,000-9,900: below the 1,000,000 step-up threshold (no challenges) and
    small enough that the simulator's test balances last for many minutes of approvals."""
    return {
        "amount": 1000 + (i % 90) * 100,
        "currency": "KRW",
        "order_id": f"{tag}-order-{i}",
        "customer_id": f"cust-{i % 5000}",
        "card": {"number": case.number, "exp_month": 12, "exp_year": case.exp_year, "cvc": "737"},
        "device": {"id": f"dev-{i % 5000}", "ip": f"203.0.113.{i % 250 + 1}"},
    }


# --- the server wrapper (diagnostic runs only) ---------------------------------------------

# Starts the app exactly as ``haetae serve`` does (cli.serve: logging, migrations, services,
# uvicorn.Config with the same arguments, on uvloop) and adds a count of SQL statements by
# verb and table (reset on SIGUSR1, written as JSON on SIGUSR2).
SERVER_WRAPPER = r"""
import asyncio, collections, json, os, signal, sys
from pathlib import Path

import uvicorn
from sqlalchemy import event

from haetae.app import create_app
from haetae.config import Settings
from haetae.db.migrate import upgrade
from haetae.logging import configure_logging
from haetae.services import build_services

host, port, counts_path = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
settings = Settings()
configure_logging(settings.log_level, json=settings.log_json, cache=True)
upgrade(settings.effective_database_url)
services = build_services(settings)
counts = collections.Counter()


def _count(statement):
    words = statement.replace("(", " ").replace(")", " ").split()
    if not words:
        return
    verb = words[0].upper()
    upper = [w.upper() for w in words]
    if verb == "SELECT" and "FROM" in upper:
        target = words[upper.index("FROM") + 1]
    elif verb in ("INSERT", "DELETE") and len(words) > 2:
        target = words[2]
    elif verb == "UPDATE":
        target = words[1]
    elif verb == "BEGIN" and len(words) > 1:
        target = words[1].upper()
    else:
        target = " ".join(words[1:2])
    counts[f"{verb} {target}".strip()] += 1


@event.listens_for(services.db.engine.sync_engine, "connect")
def _trace(dbapi_connection, _record):
    raw = getattr(dbapi_connection, "raw", None)  # the inline SQLite dialect's sqlite3
    if raw is not None:  # every statement SQLite runs: SQLAlchemy's and the direct path's
        raw.set_trace_callback(_count)


if not services.db.is_sqlite:

    @event.listens_for(services.db.engine.sync_engine, "before_cursor_execute")
    def _statement(conn, cursor, statement, parameters, context, executemany):
        _count(statement)

    @event.listens_for(services.db.engine.sync_engine, "commit")
    def _commit(conn):
        counts["COMMIT"] += 1


async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, counts.clear)
    loop.add_signal_handler(
        signal.SIGUSR2, lambda: counts_path.write_text(json.dumps(dict(counts)))
    )
    config = uvicorn.Config(
        create_app(settings, services), host=host, port=port, log_config=None, access_log=False
    )
    await uvicorn.Server(config).serve()


import uvloop

with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
    runner.run(main())
"""


# --- one run ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunConfig:
    name: str
    concurrency: int
    seconds: float
    warmup: float
    pinned: bool = False  # server alone on CPU 0; simulator and load generator on CPU 1
    profile: bool = False  # py-spy attached to the server during the measured window
    wrapper: bool = False  # server started by SERVER_WRAPPER (counts SQL statements)
    # Open loop: payments sent at this mean rate (Poisson arrivals), however slow the
    # answers; 0 = closed loop (``concurrency`` clients, each waits for its answer).
    rate: float = 0.0
    # Scale-out (print-only; see --workers): PostgreSQL, Redis and several API processes.
    database_url: str = ""
    redis_url: str = ""
    workers: int = 1


@dataclass
class RunResult:
    config: RunConfig
    window: float = 0.0
    ok: int = 0
    due: int = 0  # open loop: payments due in the measured window
    answered_in_window: int = 0  # open loop: correct answers that arrived in the window
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    mismatches: Counter[str] = field(default_factory=Counter)
    mismatch_examples: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core over the window
    profile_path: Path | None = None
    statements: dict[str, int] = field(default_factory=dict)  # SQL in the window (wrapper)
    stack_dir: Path = Path()

    @property
    def completed(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        """Correct payments per second of the measured window: the answers that arrived in
        it (in the open loop, whichever payment they answer: the server's own pace, not
        the offered rate)."""
        answered = self.answered_in_window if self.config.rate else self.ok
        return answered / self.window if self.window else 0.0

    def latency(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    @property
    def failures(self) -> int:
        return sum(self.mismatches.values()) + sum(self.errors.values())


class Stack:
    """Issuer simulator + server + merchant key in a temporary data directory."""

    def __init__(self, config: RunConfig, *, keep: bool) -> None:
        self.config = config
        self.dir = Path(tempfile.mkdtemp(prefix="haetae-bench-"))
        self.keep = keep
        self.sim_port = free_port()
        self.http_port = free_port()
        self.counts_path = self.dir / "statements.json"
        self.env = clean_env(
            {
                "HAETAE_DATA_DIR": str(self.dir / "data"),
                "HAETAE_ISSUERS": json.dumps([{"port": self.sim_port}]),
                "HAETAE_LOG_LEVEL": "WARNING",
                # One merchant key drives the whole load: its default rate limit
                # (200/s, docs/operations.md) would measure the limit, not the platform.
                "HAETAE_RATE_LIMIT_MERCHANT": "1000000/second",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.children: list[Child] = []
        self.key = ""
        self.schema = ""
        if config.database_url:  # a schema of its own, dropped with the stack
            self.schema = f"bench_{uuid.uuid4().hex[:12]}"
            with _pg_engine(config.database_url).begin() as connection:
                connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{self.schema}"'))
            sep = "&" if "?" in config.database_url else "?"
            url = f"{config.database_url}{sep}options=-csearch_path%3D{self.schema}"
            self.env["HAETAE_DATABASE_URL"] = url
        if config.redis_url:  # a database the caller gave us to empty
            redis.Redis.from_url(config.redis_url).flushdb()
            self.env["HAETAE_REDIS_URL"] = config.redis_url
            self.env["HAETAE_RATE_LIMIT_STORAGE"] = f"async+{config.redis_url}"

    def _pin(self, cpu: int, argv: list[str]) -> list[str]:
        if self.config.pinned:
            return ["taskset", "-c", str(cpu), *argv]  # execs: the pid stays the Python one
        return argv

    def start(self) -> None:
        cli = [PYTHON, "-m", "haetae.cli"]
        sim = start_child(
            "issuer-sim",
            self._pin(1, [*cli, "issuer-sim", "--port", str(self.sim_port)]),
            env=self.env,
            log_dir=self.dir,
            cwd=ROOT,
        )
        self.children.append(sim)
        wait_for_port(self.sim_port, sim)
        created = subprocess.run(
            [*cli, "keys", "create", "--merchant", "bench"],
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
        if self.config.wrapper:
            argv = [PYTHON, "-c", SERVER_WRAPPER, "127.0.0.1", str(self.http_port)]
            argv.append(str(self.counts_path))
        else:
            argv = [*cli, "serve", "--port", str(self.http_port)]
            if self.config.workers > 1:
                argv += ["--workers", str(self.config.workers)]
        server = start_child("server", self._pin(0, argv), env=self.env, log_dir=self.dir, cwd=ROOT)
        self.children.append(server)
        wait_for_http(f"http://127.0.0.1:{self.http_port}/healthz", server)

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        if self.schema:
            with _pg_engine(self.config.database_url).begin() as connection:
                connection.execute(sqlalchemy.text(f'DROP SCHEMA "{self.schema}" CASCADE'))
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def _pg_engine(url: str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def _check(case: CardCase, status: int, raw: bytes) -> str | None:
    """None when the response is what the card must produce, else what was wrong."""
    if status != case.status:
        return f"HTTP {status} (expected {case.status}): {raw[:200]!r}"
    try:
        body = json.loads(raw)
    except ValueError:
        return f"unreadable body: {raw[:200]!r}"
    code = (body.get("error") or {}).get("code")
    if body.get("status") != case.outcome or code != case.error_code:
        return f"status {body.get('status')!r} code {code!r}"
    return None


async def _drive(
    config: RunConfig,
    stack: Stack,
    on_start: Callable[[], None],
    on_end: Callable[[], None],
) -> RunResult:
    result = RunResult(config)
    url = f"http://127.0.0.1:{stack.http_port}/v1/payments"
    auth = f"Bearer {stack.key}"
    tag = f"{config.name}-{os.getpid()}-{int(time.time())}"
    counter: Iterator[int] = itertools.count()
    loop = asyncio.get_running_loop()
    t_start = time.perf_counter() + config.warmup
    t_end = t_start + config.seconds
    loop.call_later(config.warmup, on_start)
    loop.call_later(config.warmup + config.seconds, on_end)

    def counted(sent_at: float, ended_at: float) -> bool:
        """Whether a payment belongs to the measured window: in the closed loop, those
        answered in it; in the open loop, those due in it (however late their answer)."""
        if config.rate:
            return t_start <= sent_at < t_end
        return t_start <= ended_at <= t_end

    async def pay(session: aiohttp.ClientSession, i: int, sent_at: float) -> None:
        """One payment; its latency counts from ``sent_at`` (in the open loop, the moment it
        was due: a request the client could not send on time is not flattered by it)."""
        case = SEQUENCE[i % len(SEQUENCE)]
        data = json.dumps(payment_body(case, i, tag)).encode()
        headers = {
            "Authorization": auth,
            "Content-Type": "application/json",
            "Idempotency-Key": f"{tag}-{i}",
        }
        try:
            async with session.post(url, data=data, headers=headers) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            if counted(sent_at, time.perf_counter()):
                result.errors[type(error).__name__] += 1
            return
        t1 = time.perf_counter()
        problem = _check(case, status, raw)
        if config.rate and problem is None and t_start <= t1 <= t_end:
            result.answered_in_window += 1
        if not counted(sent_at, t1):
            return
        result.latencies_ms.append((t1 - sent_at) * 1000)
        result.statuses[status] += 1
        if problem is None:
            result.ok += 1
        else:
            result.mismatches[case.label] += 1
            if len(result.mismatch_examples) < 5:
                result.mismatch_examples.append(f"{case.label}: {problem}")

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < t_end:
            await pay(session, next(counter), time.perf_counter())

    async def arrivals(session: aiohttp.ClientSession) -> None:
        """Poisson arrivals at ``config.rate`` (seeded: the same schedule every run); each
        payment waits only for its own answer. Those due in the window are counted, each
        followed to its answer, so the run ends after the window once they are all in."""
        gaps = random.Random(8583)
        in_flight: set[asyncio.Task[None]] = set()
        due = time.perf_counter()
        while due < t_end:
            due += gaps.expovariate(config.rate)
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            result.due += t_start <= due < t_end
            task = asyncio.create_task(pay(session, next(counter), due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)

    # In the open loop, enough connections that none waits for a free one below a few
    # hundred payments in flight; keep-alive reuses them.
    limit = config.concurrency if not config.rate else OPEN_LOOP_CONNECTIONS
    connector = aiohttp.TCPConnector(limit=limit, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if config.rate:
            await arrivals(session)
        else:
            await asyncio.gather(*(worker(session) for _ in range(config.concurrency)))
    result.window = config.seconds
    result.latencies_ms.sort()
    return result


def run_once(config: RunConfig, *, keep: bool) -> RunResult:
    stack = Stack(config, keep=keep)
    original_affinity = os.sched_getaffinity(0)
    spy: subprocess.Popen[bytes] | None = None
    marks: dict[str, dict[str, float]] = {}
    try:
        stack.start()
        server, sim = stack.child("server"), stack.child("issuer-sim")
        if config.pinned:
            os.sched_setaffinity(0, {1})  # the load generator shares CPU 1 with the simulator
        profile_path = stack.dir / "server-profile.txt" if config.profile else None

        def sample(mark: str) -> None:
            marks[mark] = {
                # with several workers: theirs and their supervisor's together
                "server": tree_cpu_seconds(server.pid),
                "server event loop": thread_cpu_seconds(server.pid, server.pid),
                "issuer-sim": cpu_seconds(sim.pid),
                "load generator": self_cpu_seconds(),
            }

        def on_start() -> None:
            nonlocal spy
            sample("start")
            if config.wrapper:
                os.kill(server.pid, signal.SIGUSR1)  # reset the statement counts
            if profile_path is not None:
                spy = subprocess.Popen(
                    [
                        *py_spy_argv(),
                        "record",
                        "--pid",
                        str(server.pid),
                        "--duration",
                        str(round(config.seconds)),
                        "--rate",
                        str(PY_SPY_RATE),
                        "--gil",
                        "--threads",
                        "--full-filenames",
                        "--format",
                        "raw",
                        "--output",
                        str(profile_path),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )

        def on_end() -> None:
            sample("end")
            if config.wrapper:
                os.kill(server.pid, signal.SIGUSR2)  # write the statement counts

        result = run_async(_drive(config, stack, on_start, on_end))
        result.stack_dir = stack.dir
        for name in marks["start"]:
            used = marks["end"][name] - marks["start"][name]
            result.cpu[name] = 100 * used / result.window
        if spy is not None:
            spy.wait(timeout=60)
            if profile_path is not None and profile_path.exists():
                result.profile_path = profile_path
        if config.wrapper:
            deadline = time.monotonic() + 5
            while not stack.counts_path.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            with contextlib.suppress(OSError, ValueError):
                result.statements = json.loads(stack.counts_path.read_text())
        if not server.alive():
            raise RuntimeError(f"the server died during the run:\n{server.log_tail()}")
        return result
    finally:
        os.sched_setaffinity(0, original_affinity)
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait()
        stack.stop()


# --- the profile ------------------------------------------------------------------------------


# Areas a sample is charged to: walking from the innermost frame outwards, the first frame
# that matches one. Plain stdlib frames match nothing, so their time goes to their caller
# (``json`` called by pydantic counts as JSON; ``contextlib`` called by SQLAlchemy as
# SQLAlchemy); what is left is the event loop itself.
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("socket writes (asyncio transport send)", ("_SelectorSocketTransport.write ",)),
    (
        "thread wake-ups (call_soon_threadsafe self-pipe)",
        ("._read_from_self ", "._write_to_self "),
    ),
    ("aiosqlite hand-off to its thread (queue put, await)", ("/aiosqlite/",)),
    ("SQLAlchemy (ORM, Core, asyncio adapter)", ("/sqlalchemy/",)),
    ("greenlet switches (SQLAlchemy asyncio)", ("/greenlet/",)),
    ("anyio thread pool (sync dependencies)", ("/anyio/",)),
    ("pydantic", ("/pydantic/", "/pydantic_core/")),
    ("JSON (stdlib json)", ("/json/",)),
    ("logging (structlog, stdlib)", ("/structlog/", "/logging/")),
    ("ISO 8583 codec", ("/iso8583/", "iso8583_codec.py")),
    ("prometheus_client", ("/prometheus_client/",)),
    ("FastAPI (routing, dependencies, validation, serialization)", ("/fastapi/",)),
    ("Starlette (middleware, requests, responses)", ("/starlette/",)),
    ("uvicorn + httptools (HTTP protocol)", ("/uvicorn/", "/httptools/")),
    ("haetae application code", ("/haetae/",)),
)
LOOP_AREA = "asyncio event loop, other stdlib"

# Steps of a payment, as cumulative shares of the event-loop thread's samples.
STEPS: tuple[tuple[str, str], ...] = (
    ("whole HTTP request (uvicorn → app → response)", "RequestResponseCycle.run_asgi"),
    ("FastAPI dependency solving (key, locale, services)", "solve_dependencies"),
    ("  of it, sync dependencies run in anyio's thread pool", "run_in_threadpool"),
    ("endpoint `create_payment` (all the payment work)", "create_payment"),
    ("  `IdempotencyKeys.insert_claim` (in the first write)", "IdempotencyKeys.insert_claim"),
    ("  `PaymentService._authorize` (save, then issuer call)", "PaymentService._authorize"),
    ("    `Iso8583Connector.authorize` (codec + TCP exchange)", "Iso8583Connector.authorize"),
    ("  `PaymentService._finish` (outcome, event, idempotent reply)", "PaymentService._finish"),
    ("    `IdempotencyKeys.complete` (Core UPDATE)", "IdempotencyKeys.complete"),
    (
        "ORM-enabled UPDATE pre-work (`synchronize_session` evaluation)",
        "_BulkUDCompileState.orm_pre_session_exec",
    ),
    ("ORM flush (unit of work for added/changed rows)", "Session._flush"),
    ("`OutboxRelay.publish_pending` (relay: read + mark events)", "OutboxRelay.publish_pending"),
    ("`Database.transaction` (enter/exit: BEGIN IMMEDIATE, COMMIT)", "Database.transaction"),
)
# Samples spent in SQLAlchemy's sync code inside a greenlet show up as stacks of their own,
# not below the coroutine that awaits them, so the steps above under-count database work;
# this line counts every sample with any SQLAlchemy or aiosqlite frame.
DB_LINE = "any SQLAlchemy or aiosqlite frame on the stack (includes greenlet-side stacks)"
IDLE_LEAVES = ("EpollSelector.select ", "select (", "Condition.wait ", "Queue.get ")


def _area(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in AREAS:
            if any(needle in frame for needle in needles):
                return name
    return LOOP_AREA


@dataclass
class Profile:
    samples: int  # event-loop thread samples holding the GIL
    other_threads: int  # samples of other threads holding the GIL
    areas: list[tuple[str, float]]
    steps: list[tuple[str, float]]


def summarize_profile(path: Path) -> Profile:
    """Aggregate py-spy's raw output (``--gil --threads``): the event-loop thread's samples,
    self time by area and cumulative time by step of a payment."""
    total = other = 0
    areas: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        if not frames or any(frames[-1].startswith(idle) for idle in IDLE_LEAVES):
            continue
        if "MainThread" not in thread:
            other += count
            continue
        total += count
        areas[_area(frames)] += count
        for label, needle in STEPS:
            if any(f.startswith(needle + " ") for f in frames):
                steps[label] += count
        if any("/sqlalchemy/" in f or "/aiosqlite/" in f for f in frames):
            steps[DB_LINE] += count
    share = 100 / total if total else 0.0
    return Profile(
        samples=total,
        other_threads=other,
        areas=[(k, v * share) for k, v in areas.most_common()],
        steps=[(label, steps[label] * share) for label, _ in STEPS]
        + [(DB_LINE, steps[DB_LINE] * share)],
    )


# --- reporting -------------------------------------------------------------------------------

CPU_NAMES = ("server", "server event loop", "issuer-sim", "load generator")


def median_result(results: list[RunResult]) -> dict[str, float]:
    """Medians over repetitions of the figures the report quotes."""

    def med(values: list[float]) -> float:
        return statistics.median(values)

    return {
        "requests": med([r.completed for r in results]),
        "rps": med([r.rps for r in results]),
        "p50": med([r.latency(50) for r in results]),
        "p90": med([r.latency(90) for r in results]),
        "p99": med([r.latency(99) for r in results]),
        "max": med([r.latency(100) for r in results]),
        "failures": med([r.failures for r in results]),
        "unanswered": med([r.due - r.ok - r.failures for r in results if r.config.rate] or [0]),
        **{f"cpu:{name}": med([r.cpu.get(name, 0.0) for r in results]) for name in CPU_NAMES},
    }


def _row(label: str, m: dict[str, float]) -> str:
    return (
        f"| {label} | {m['requests']:,.0f} | **{m['rps']:,.0f}** | {m['p50']:.1f} | "
        f"{m['p90']:.1f} | **{m['p99']:.1f}** | {m['max']:.1f} | {m['failures']:,.0f} | "
        f"{m['cpu:server']:.0f}% ({m['cpu:server event loop']:.0f}%) | "
        f"{m['cpu:issuer-sim']:.0f}% | {m['cpu:load generator']:.0f}% |"
    )


def verdict(m: dict[str, float]) -> str:
    parts = []
    if m["rps"] >= TARGET_RPS:
        parts.append(f"{m['rps']:,.0f} payments/s ≥ {TARGET_RPS:,.0f}")
    elif m["rps"] > 0:
        short = 100 * (1 - m["rps"] / TARGET_RPS)
        parts.append(
            f"{m['rps']:,.0f} payments/s, {short:.0f}% short of {TARGET_RPS:,.0f} "
            f"(it needs {TARGET_RPS / m['rps']:.1f}× more)"
        )
    else:
        parts.append("no payment completed correctly")
    if m["p99"] < TARGET_P99_MS:
        parts.append(f"p99 {m['p99']:.1f} ms < {TARGET_P99_MS:.0f} ms")
    else:
        parts.append(
            f"p99 {m['p99']:.1f} ms, {m['p99'] / TARGET_P99_MS:.1f}× the {TARGET_P99_MS:.0f} ms"
        )
    if m["failures"]:
        parts.append(f"{m['failures']:,.0f} wrong answers or errors")
    return "; ".join(parts)


def met(m: dict[str, float]) -> bool:
    return m["rps"] >= TARGET_RPS and m["p99"] < TARGET_P99_MS and not m["failures"]


def open_loop_name(rate: float) -> str:
    return f"rate={rate:g}"


def open_loop_verdict(m: dict[str, float], rate: float) -> str:
    """A server that keeps up answers at the offered rate (up to the schedule's randomness)
    with a bounded latency; one that does not answers at its own pace, later and later."""
    answered = "every payment due in the window answered correctly"
    if m["failures"] or m["unanswered"]:
        answered = f"{m['failures'] + m['unanswered']:,.0f} payments not answered correctly"
    p99 = (
        f"p99 {m['p99']:.1f} ms < {TARGET_P99_MS:.0f} ms"
        if m["p99"] < TARGET_P99_MS
        else f"p99 {m['p99']:.1f} ms, {m['p99'] / TARGET_P99_MS:.1f}× the {TARGET_P99_MS:.0f} ms"
    )
    return f"offered {rate:,.0f}/s, answered {m['rps']:,.0f}/s in the window; {answered}; {p99}"


def open_loop_met(m: dict[str, float], rate: float) -> bool:
    return (
        rate >= TARGET_RPS
        and not m["failures"]
        and not m["unanswered"]
        and m["p99"] < TARGET_P99_MS
    )


def _statements_table(result: RunResult) -> list[str]:
    payments = result.completed
    if not result.statements or not payments:
        return []
    begins = result.statements.get("BEGIN IMMEDIATE", 0)
    commits = result.statements.get("COMMIT", 0)
    sql = {k: v for k, v in result.statements.items() if k not in ("BEGIN IMMEDIATE", "COMMIT")}
    lines = [
        "",
        "Database work per payment (diagnostic run; every statement SQLite ran, through "
        "SQLAlchemy or the direct path, from sqlite3's trace callback, an `executemany` "
        f"once per row, over its measured window ÷ {payments:,} payments completed in it): "
        f"**{begins / payments:.1f} transactions** (`BEGIN IMMEDIATE`; "
        f"{commits / payments:.1f} commits) and **{sum(sql.values()) / payments:.1f} "
        "statements**:",
        "",
        "| statement | per payment |",
        "| --- | ---: |",
    ]
    for name, count in sorted(sql.items(), key=lambda kv: -kv[1]):
        lines.append(f"| `{name}` | {count / payments:.2f} |")
    return lines


def render(
    args: argparse.Namespace,
    runs: dict[str, list[RunResult]],
    labels: dict[str, str],
    profile: Profile | None,
    profile_note: str,
) -> str:
    info = machine()
    main_name, low_name = f"c={args.concurrency}", f"c={LOW_CONCURRENCY}"
    medians = {name: median_result(results) for name, results in runs.items()}
    main = medians[main_name]
    reps = f"median of {args.repeat} runs each" if args.repeat > 1 else "one run each"
    lines = [
        f"Target (issue): at least {TARGET_RPS:,.0f} payments/s with p99 under "
        f"{TARGET_P99_MS:.0f} ms, over HTTP against a running server and issuer simulator, "
        "on SQLite, on this machine.",
        "",
        f"**Verdict: target {'met' if met(main) else 'missed'}** at concurrency "
        f"{args.concurrency}: {verdict(main)}.",
    ]
    if low_name in medians and low_name != main_name:
        low = medians[low_name]
        lines.append(
            f"At concurrency {LOW_CONCURRENCY}: {'met' if met(low) else 'missed'}: {verdict(low)}."
        )
    open_name = open_loop_name(args.rate)
    if open_name in medians:
        opened = medians[open_name]
        lines.append(
            f"At a fixed arrival rate (open loop): "
            f"{'met' if open_loop_met(opened, args.rate) else 'missed'}: "
            f"{open_loop_verdict(opened, args.rate)}."
        )
    lines += [
        "",
        f"- Date: {info['date']}",
        f"- Command: `{command_line()}`",
        f"- Machine: {info['cpus']} × {info['cpu_model']}, {info['memory']} RAM, {info['os']}",
        f"- Software: {info['python']}; {info['packages']}",
        f"- Window: {args.warmup:g} s warm-up, then {args.seconds:g} s measured ({reps}) for "
        "the closed- and open-loop configurations; every configuration on a fresh stack (new data "
        "directory, server, simulator)",
        "",
        "| configuration | requests | payments/s | p50 ms | p90 ms | p99 ms | max ms | "
        "wrong/errors | server CPU (event loop) | sim CPU | load gen CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [_row(labels.get(name, name), m) for name, m in medians.items()]
    lines += [
        "",
        "payments/s counts only responses whose HTTP status and outcome match the card "
        "(completed in the measured window ÷ its length); latency is per request, client-side "
        "(`time.perf_counter` around the request, body read included); closed loop, so at a "
        "fixed concurrency latency ≈ concurrency ÷ throughput once the server is saturated. "
        "The open-loop run sends payments at a fixed mean rate instead (Poisson arrivals, "
        "a seeded schedule, up to "
        f"{OPEN_LOOP_CONNECTIONS} keep-alive connections), whatever the answers' pace, "
        "and times each from the moment it was due: the reading of the target as load "
        "arriving at 1,000/s, where a server that falls behind shows it in its latency; "
        "payments/s there counts the correct answers that arrived in the window (the "
        "server's pace), and its latencies are those of the payments due in the window. "
        f"CPU is % of one core over the measured window ({cpu_source()}; 2 cores = 200%); "
        "in brackets, the server's main thread, which runs the event loop and all the "
        "Python request work.",
        "",
        "Status codes (first run of each configuration):",
        "",
    ]
    for name, results in runs.items():
        first = results[0]
        codes = ", ".join(f"{code} × {n:,}" for code, n in sorted(first.statuses.items()))
        lines.append(f"- {labels.get(name, name)}: {codes or 'none'}")
        lines += [f"  - wrong answer for {label}: {n:,}" for label, n in first.mismatches.items()]
        lines += [f"  - client error {error}: {n:,}" for error, n in first.errors.items()]
        lines += [f"  - e.g. {example}" for example in first.mismatch_examples]
    lines += [
        "",
        "Card mix (a fixed, seeded 20-slot cycle, the same in every run; amounts KRW "
        "1,000-9,900, below the 1,000,000 step-up threshold, so no challenges; a unique "
        "order id and `Idempotency-Key` per request):",
        "",
        "| share | card | expected |",
        "| ---: | --- | --- |",
    ]
    for case in CASES:
        expected = f"{case.status} {case.outcome}" + (
            f" `{case.error_code}`" if case.error_code else ""
        )
        lines.append(f"| {case.weight * 5}% | {case.label} | {expected} |")
    lines += [
        "",
        "Setup: `haetae issuer-sim` and `haetae serve` as subprocesses (one uvicorn process "
        "with httptools, on uvloop as `cli.serve` starts it), SQLite (WAL, one connection, "
        "statements run inline on the event loop: `db/sqlite_inline.py`) in a temporary "
        "`HAETAE_DATA_DIR`, `HAETAE_LOG_LEVEL=WARNING` (the per-payment INFO logs are "
        "filtered out, so their rendering cost is not in these figures; warnings and errors "
        "would be), issuer port via `HAETAE_ISSUERS='[{\"port\": N}]'` "
        "(`HAETAE_ISSUERS__0__PORT` does not parse: pydantic-settings builds a dict, not a "
        "list), `HAETAE_RATE_LIMIT_MERCHANT=1000000/second` (one key drives the whole load; "
        "every request is still counted, never refused). The load generator is this Python "
        "process (aiohttp on uvloop, one session, "
        "keep-alive, connector limit = concurrency): it shares the 2 cores with the server "
        "and the simulator. All traffic is on loopback.",
    ]
    if "pinned" in medians:
        pinned = medians["pinned"]
        lines += [
            "",
            "Pinned run: the server alone on CPU 0 (`taskset -c 0`), the simulator and the load "
            f"generator together on CPU 1: {pinned['rps']:,.0f} payments/s (p99 "
            f"{pinned['p99']:.1f} ms) against {main['rps']:,.0f} unpinned, with the server at "
            f"{pinned['cpu:server']:.0f}% of its core. The load generator itself used "
            f"{main['cpu:load generator']:.0f}% of a core unpinned: the server, not the "
            "client, is the limit.",
        ]
    if profile is not None or profile_note or any(r[0].statements for r in runs.values()):
        lines += ["", "### Where the server's time goes"]
        if profile_note:
            lines += ["", profile_note]
        for results in runs.values():
            if results[0].config.profile or results[0].statements:
                lines += _statements_table(results[0])
                break
    if profile is not None:
        lines += [
            "",
            f"py-spy (`record --gil --threads`, {PY_SPY_RATE} Hz) on the server over the "
            f"measured window of the diagnostic run: {profile.samples:,} samples of the "
            f"event-loop thread holding the GIL ({profile.other_threads:,} of other "
            "threads: anyio's thread pool). Time in C "
            "without the GIL (SQLite itself, system calls) is not in these samples; the "
            "thread CPU columns above have it.",
            "",
            "Self time by area (charged to the innermost frame that belongs to one; plain "
            "stdlib frames go to their caller):",
            "",
            "| area | share of event-loop samples |",
            "| --- | ---: |",
        ]
        lines += [f"| {name} | {pct:.1f}% |" for name, pct in profile.areas if pct >= 0.5]
        lines += [
            "",
            "Cumulative share by step of a payment (samples with the function on the stack):",
            "",
            "| step | cumulative |",
            "| --- | ---: |",
        ]
        lines += [f"| {name} | {pct:.1f}% |" for name, pct in profile.steps]
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration (median)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    parser.add_argument(
        "--extra-seconds",
        type=float,
        default=8.0,
        help="measured window of the pinned and diagnostic runs",
    )
    parser.add_argument("--no-pinned", action="store_true", help="skip the pinned run")
    parser.add_argument(
        "--rate",
        type=float,
        default=TARGET_RPS,
        help="payments/s of the open-loop run (Poisson arrivals); 0 = no open-loop run",
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="diagnostic run (py-spy, SQL counts): auto = only when the target is missed",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    scale = parser.add_argument_group(
        "scale-out (print only: the section is about the embedded default)"
    )
    scale.add_argument("--database-url", default="", help="postgresql://... (a schema per run)")
    scale.add_argument("--redis-url", default="", help="redis://.../N: a database it may empty")
    scale.add_argument("--workers", type=int, default=1, help="API processes (haetae serve)")
    args = parser.parse_args()
    if args.database_url or args.redis_url or args.workers > 1:
        args.no_write, args.no_pinned, args.profile = True, True, "never"

    main_name, low_name = f"c={args.concurrency}", f"c={LOW_CONCURRENCY}"
    labels = {
        main_name: f"concurrency {args.concurrency}",
        low_name: f"concurrency {LOW_CONCURRENCY}",
        "pinned": f"concurrency {args.concurrency}, server pinned alone to CPU 0",
        open_loop_name(args.rate): f"fixed arrival rate {args.rate:,.0f}/s (open loop)",
        "profiled": f"concurrency {args.concurrency}, diagnostic run (py-spy attached; "
        "not a benchmark figure)",
    }
    scale_out = {
        "database_url": args.database_url,
        "redis_url": args.redis_url,
        "workers": args.workers,
    }
    plan = [RunConfig(main_name, args.concurrency, args.seconds, args.warmup, **scale_out)]
    if args.concurrency != LOW_CONCURRENCY:
        plan.append(RunConfig(low_name, LOW_CONCURRENCY, args.seconds, args.warmup, **scale_out))
    if args.rate > 0:
        plan.append(
            RunConfig(
                open_loop_name(args.rate),
                0,
                args.seconds,
                args.warmup,
                rate=args.rate,
                **scale_out,
            )
        )
    extra_warmup = min(args.warmup, 2.0)
    runs: dict[str, list[RunResult]] = defaultdict(list)
    started = time.monotonic()

    def run(config: RunConfig, *, keep: bool = args.keep) -> RunResult:
        print(f"{config.name}: {config.warmup:g} s warm-up + {config.seconds:g} s ...", flush=True)
        result = run_once(config, keep=keep)
        runs[config.name].append(result)
        cpu = ", ".join(f"{k} {v:.0f}%" for k, v in result.cpu.items())
        print(
            f"  {result.rps:,.0f} payments/s, p50 {result.latency(50):.1f} ms, "
            f"p99 {result.latency(99):.1f} ms, {result.failures} wrong/errors; CPU: {cpu}",
            flush=True,
        )
        return result

    for _ in range(args.repeat):
        for config in plan:
            run(config)
    can_pin = len(os.sched_getaffinity(0)) >= 2 and shutil.which("taskset")
    if not args.no_pinned and can_pin:
        run(RunConfig("pinned", args.concurrency, args.extra_seconds, extra_warmup, pinned=True))

    profile: Profile | None = None
    profile_note = ""
    if args.profile == "always" or (
        args.profile == "auto" and not met(median_result(runs[main_name]))
    ):
        spy = bool(py_spy_argv())
        if not spy:
            profile_note = "py-spy is not installed (`pip install py-spy`): no profile."
        result = run(
            RunConfig(
                "profiled",
                args.concurrency,
                args.extra_seconds,
                extra_warmup,
                profile=spy,
                wrapper=True,
            ),
            keep=True,
        )
        if spy and result.profile_path is None:
            profile_note = "py-spy could not record the server (is ptrace permitted?)."
        elif result.profile_path is not None:
            profile = summarize_profile(result.profile_path)
        if args.keep:
            print(f"  kept: {result.profile_path}")
        else:
            shutil.rmtree(result.stack_dir, ignore_errors=True)
    print(f"total {time.monotonic() - started:.0f} s\n")

    section = render(args, runs, labels, profile, profile_note)
    print(section)
    if not args.no_write:
        replace_section(args.out, HEADING, section)
        print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
