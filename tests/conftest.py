"""Shared fixtures: a real database per test (SQLite file by default, PostgreSQL when
HAETAE_TEST_DATABASE_URL is set), a real issuer simulator on loopback, the real app."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import os
import shutil
import sys
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Coroutine, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from haetae.app import create_app
from haetae.config import IssuerSettings, Settings
from haetae.db.base import utcnow
from haetae.db.migrate import upgrade
from haetae.issuer_sim.server import IssuerSimulator
from haetae.services import Services, build_services

PG_URL = os.environ.get("HAETAE_TEST_DATABASE_URL", "")
# Seconds before a test's timeout (pytest-timeout) at which the asyncio tasks still pending
# are printed: the timeout's own dump shows threads, and a hung asyncio test shows only its
# event loop idle in epoll, not which await never returns.
TASK_DUMP_LEAD_SECONDS = 10.0


def _print_pending_tasks(phase: str, nodeid: str) -> None:
    # From the timer thread, while the test's loop waits: a diagnostic, read-only. The tasks
    # are found among all objects (asyncio has no public registry across loops).
    tasks = [o for o in gc.get_objects() if isinstance(o, asyncio.Task) and not o.done()]
    print(
        f"\n--- {nodeid} ({phase}) still waiting: {len(tasks)} asyncio task(s) ---", file=sys.stderr
    )
    for task in tasks:
        task.print_stack(limit=20, file=sys.stderr)


@contextlib.contextmanager
def _pending_tasks_printed_before_timeout(item: pytest.Item, phase: str) -> Iterator[None]:
    marker = item.get_closest_marker("timeout")
    seconds = (
        float(marker.args[0])
        if marker and marker.args
        else float(item.config.getini("timeout") or 0)
    )
    if seconds <= TASK_DUMP_LEAD_SECONDS:
        yield
        return
    timer = threading.Timer(
        seconds - TASK_DUMP_LEAD_SECONDS, _print_pending_tasks, (phase, item.nodeid)
    )
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _pending_tasks_printed_before_timeout(item, "call"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    with _pending_tasks_printed_before_timeout(item, "teardown"):
        return (yield)


class Clock:
    """A clock tests can move; defaults to real time."""

    def __init__(self) -> None:
        self.fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed or utcnow()


@pytest.fixture(scope="session")
def _database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrate once per session: a SQLite file to copy, or a PostgreSQL schema to reuse."""
    if PG_URL:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in PG_URL else "?"
        url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
        upgrade(url)
        yield url
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
    else:
        path = tmp_path_factory.mktemp("template") / "haetae.db"
        upgrade(f"sqlite:///{path}")
        yield str(path)


def _truncate(conn: sa.Connection, names: str) -> None:
    """TRUNCATE waits for every other transaction that touched the tables. A connection an
    earlier test left inside a transaction (a task cancelled mid-query keeps its connection
    out of the pool, so ``dispose`` cannot close it) would stall the run for ever: wait a
    bounded time, then name the holders on stderr, end their sessions and try again."""
    for attempt in range(2):
        conn.execute(sa.text("SET LOCAL lock_timeout = '15s'"))
        try:
            with conn.begin_nested():
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        except sa.exc.OperationalError:
            if attempt:
                raise
        holders = conn.execute(
            sa.text(
                "SELECT pid, state, now() - xact_start, left(query, 200) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND xact_start IS NOT NULL"
            )
        ).all()
        # A warning, so the run's summary shows it: the leak is a bug to find, not to hide.
        warnings.warn(f"TRUNCATE blocked; ending sessions left open: {holders}", stacklevel=1)
        for pid, *_ in holders:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.fixture
def database_url(_database_template: str, tmp_path: Path) -> str:
    if PG_URL:
        engine = sa.create_engine(
            _database_template.replace("postgresql://", "postgresql+psycopg://", 1)
        )
        with engine.begin() as conn:
            tables = conn.execute(
                sa.text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                    "AND tablename <> 'alembic_version'"
                )
            ).scalars()
            names = ", ".join(f'"{t}"' for t in tables)
            if names:
                _truncate(conn, names)
        engine.dispose()
        return _database_template
    target = tmp_path / "haetae.db"
    shutil.copyfile(_database_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
async def issuer_sim() -> AsyncIterator[IssuerSimulator]:
    sim = IssuerSimulator("127.0.0.1", 0)
    await sim.start()
    yield sim
    await stop_or_show_what_hangs(sim.stop(), "the issuer simulator")


@pytest.fixture
def clock() -> Clock:
    return Clock()


# The issuer simulator runs on the tests' own event loop, so anything that stalls the loop
# (a full collection, a slow PostgreSQL commit) delays its answers too. A short timeout made
# ordinary payments fail as "issuer_timeout" now and then; only tests that wait for a
# timeout to pass ask for one (``@pytest.mark.issuer_timeout(0.5)``).
ISSUER_TIMEOUT_SECONDS = 5.0


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    database_url: str,
    tmp_path: Path,
    issuer_sim: IssuerSimulator,
) -> Settings:
    marker = request.node.get_closest_marker("issuer_timeout")
    timeout = float(marker.args[0]) if marker else ISSUER_TIMEOUT_SECONDS
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        master_key=base64.b64encode(os.urandom(32)).decode(),
        fingerprint_key=base64.b64encode(os.urandom(32)).decode(),
        issuers=[
            IssuerSettings(
                name="sim",
                port=issuer_sim.port,
                timeout_seconds=timeout,
                connect_timeout_seconds=2.0,
            )
        ],
        idempotency_wait_seconds=5.0,
        demo=True,
    )


@pytest.fixture
async def services(settings: Settings, clock: Clock) -> AsyncIterator[Services]:
    built = build_services(settings, clock=clock)
    await built.start()
    yield built
    await stop_or_show_what_hangs(built.stop(), "the services")


async def stop_or_show_what_hangs(
    stopping: Coroutine[Any, Any, None], what: str, seconds: float = 60.0
) -> None:
    """Await a teardown; if it hangs, print every task's stack and fail the test, since
    pytest-timeout's thread dump shows only the event loop waiting, never on what."""
    try:
        await asyncio.wait_for(stopping, seconds)
    except TimeoutError:
        print(f"stopping {what} took over {seconds:.0f} s; the tasks:", file=sys.stderr)
        for task in asyncio.all_tasks():
            print(f"--- {task!r}", file=sys.stderr)
            task.print_stack(file=sys.stderr)
        raise


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(services.settings, services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://haetae.test") as c:
        yield c
