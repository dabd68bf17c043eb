"""CPU per payment of this tree against a git revision, measured side by side.

This machine's speed moves by a third within minutes, so two figures taken one after the
other compare the moments, not the code. Here both versions run at the same time, each on
a core of its own (``taskset``), and swap cores every round: whatever slows the machine
slows both. Each side is this script in ``--side`` mode: the app (``create_app``) called
directly as ASGI (no HTTP server: its cost is the same for both), with the real issuer
simulator over ISO 8583 and SQLite in a temporary directory (or, with ``--database-url``
and ``--redis-url``, a PostgreSQL schema and a Redis database of each side's own), driven
with the card mix of ``bench/payments.py``. It reports the event-loop thread's CPU per
payment.

    .venv/bin/python bench/paired.py --base REV [--payments 2000] [--rounds 4]
        [--base-python OTHER_VENV/bin/python]
        [--database-url postgresql://... --redis-url redis://host:port]

Print-only: a comparison of two versions is a step of work, not a figure of the platform.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
import sqlalchemy

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, clean_env, free_port, run_async, start_child, wait_for_port
from payments import SEQUENCE, payment_body

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 1000
REDIS_DBS = {0: 10, 1: 11}  # with --redis-url: the side on each core has a database of its own


# --- one side ----------------------------------------------------------------------------


def _scope(body: bytes, key: str, i: int) -> dict[str, Any]:
    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {key}".encode()),
        (b"idempotency-key", f"paired-{i}".encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/payments",
        "raw_path": b"/v1/payments",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


class _Driver:
    """Pays through the ASGI app, each payment with its own order id and Idempotency-Key."""

    def __init__(self, app: Any, key: str, concurrency: int) -> None:
        self.app, self.key, self.concurrency = app, key, concurrency
        self.sent = 0

    async def pay(self, i: int) -> None:
        case = SEQUENCE[i % len(SEQUENCE)]
        body = json.dumps(payment_body(case, i, "paired")).encode()
        delivered = False
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await self.app(_scope(body, self.key, i), receive, send)
        if statuses != [case.status]:
            raise RuntimeError(f"payment {i} ({case.label}): HTTP {statuses}, not {case.status}")

    async def cpu_per_payment(self, payments: int) -> float:
        """µs of this thread's CPU per payment, over ``payments`` of them."""
        first, self.sent = self.sent, self.sent + payments

        async def worker(offset: int) -> None:
            for i in range(first + offset, first + payments, self.concurrency):
                await self.pay(i)

        began = time.thread_time()
        await asyncio.gather(*(worker(w) for w in range(self.concurrency)))
        return 1e6 * (time.thread_time() - began) / payments


def run_side(args: argparse.Namespace) -> None:
    import uvloop

    from haetae.app import create_app
    from haetae.config import Settings
    from haetae.db.migrate import upgrade
    from haetae.logging import configure_logging
    from haetae.services import build_services

    settings = Settings()
    try:
        configure_logging(settings.log_level, json=settings.log_json, cache=True)
    except TypeError:  # a revision from before loggers were cached
        configure_logging(settings.log_level, json=settings.log_json)
    upgrade(settings.effective_database_url)
    app = create_app(settings, build_services(settings))

    async def main() -> list[float]:
        driver = _Driver(app, args.key, args.concurrency)
        async with app.router.lifespan_context(app):
            await driver.cpu_per_payment(WARMUP)
            return [await driver.cpu_per_payment(args.payments) for _ in range(args.repeat)]

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        print(json.dumps(runner.run(main())))


# --- the pair ----------------------------------------------------------------------------


@contextlib.contextmanager
def _scale_out(args: argparse.Namespace, redis_db: int) -> Iterator[dict[str, str]]:
    """With ``--database-url``, a PostgreSQL schema of this side's own (dropped after);
    with ``--redis-url``, a Redis database of its own, emptied first: the settings for
    them."""
    settings: dict[str, str] = {}
    schema = f"paired_{uuid.uuid4().hex[:12]}"
    engine = None
    if args.database_url:
        engine = sqlalchemy.create_engine(
            args.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        )
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in args.database_url else "?"
        settings["HAETAE_DATABASE_URL"] = (
            f"{args.database_url}{sep}options=-csearch_path%3D{schema}"
        )
    if args.redis_url:
        url = f"{args.redis_url.rstrip('/')}/{redis_db}"
        redis.Redis.from_url(url).flushdb()
        settings["HAETAE_REDIS_URL"] = url
    try:
        yield settings
    finally:
        if engine is not None:
            with engine.begin() as connection:
                connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
            engine.dispose()


def _side(src: Path, python: str, cpu: int, args: argparse.Namespace, workdir: Path) -> list[float]:
    """One side in its own data directory (and PostgreSQL schema, Redis database), with
    its own simulator, on ``cpu``."""
    with _scale_out(args, REDIS_DBS[cpu]) as scale_out:
        return _side_on(src, python, cpu, args, workdir, scale_out)


def _side_on(
    src: Path,
    python: str,
    cpu: int,
    args: argparse.Namespace,
    workdir: Path,
    scale_out: dict[str, str],
) -> list[float]:
    sim_port = free_port()
    env = clean_env(
        {
            "PYTHONPATH": str(src),
            "HAETAE_DATA_DIR": str(workdir / "data"),
            "HAETAE_ISSUERS": json.dumps([{"port": sim_port}]),
            "HAETAE_LOG_LEVEL": "WARNING",
            "HAETAE_RATE_LIMIT_MERCHANT": "1000000/second",
            **scale_out,
        }
    )
    cli = ["taskset", "-c", str(cpu), python, "-m", "haetae.cli"]
    sim = start_child(
        "issuer-sim",
        [*cli, "issuer-sim", "--port", str(sim_port)],
        env=env,
        log_dir=workdir,
        cwd=ROOT,
    )
    try:
        wait_for_port(sim_port, sim)
        created = subprocess.run(
            [*cli, "keys", "create", "--merchant", "paired"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        side = [
            "taskset",
            "-c",
            str(cpu),
            python,
            str(Path(__file__).resolve()),
            "--side",
            "--key",
            created.stdout.strip().splitlines()[-1],
            "--payments",
            str(args.payments),
            "--repeat",
            str(args.repeat),
            "--concurrency",
            str(args.concurrency),
        ]
        done = subprocess.run(side, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"a side failed:\n{done.stderr[-2000:]}")
        figures: list[float] = json.loads(done.stdout.strip().splitlines()[-1])
        return figures
    finally:
        sim.stop()


async def _round(
    sources: dict[str, Path],
    pythons: dict[str, str],
    cpus: dict[str, int],
    args: argparse.Namespace,
    top: Path,
) -> dict[str, float]:
    async def one(name: str) -> tuple[str, float]:
        workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=top))
        figures = await asyncio.to_thread(
            _side, sources[name], pythons[name], cpus[name], args, workdir
        )
        return name, statistics.median(figures)

    return dict(await asyncio.gather(*(one(name) for name in sources)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="the git revision to compare against")
    parser.add_argument(
        "--base-python",
        default=PYTHON,
        help="the interpreter of the base side (a venv with this project installed): "
        "with --base HEAD, compares interpreters on the same code",
    )
    parser.add_argument("--payments", type=int, default=2000, help="per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per side and round")
    parser.add_argument("--rounds", type=int, default=4, help="the cores swap every round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--database-url", default="", help="postgresql://... (a schema per side and round)"
    )
    parser.add_argument(
        "--redis-url", default="", help="redis://host:port: databases 10 and 11 are emptied"
    )
    parser.add_argument("--side", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        run_side(args)
        return 0
    if len(os.sched_getaffinity(0)) < 2 or not shutil.which("taskset"):
        print("needs two cores and taskset", file=sys.stderr)
        return 2
    top = Path(tempfile.mkdtemp(prefix="haetae-paired-"))
    base_tree = top / "base"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(base_tree), args.base],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    sources = {"base": base_tree / "src", "this tree": ROOT / "src"}
    pythons = {"base": args.base_python, "this tree": PYTHON}
    ratios: list[float] = []
    try:
        for n in range(args.rounds):
            cpus = {"base": n % 2, "this tree": 1 - n % 2}
            got = run_async(_round(sources, pythons, cpus, args, top))
            ratio = got["base"] / got["this tree"]
            ratios.append(ratio)
            print(
                f"round {n + 1}: base {got['base']:,.0f} µs (CPU {cpus['base']}), "
                f"this tree {got['this tree']:,.0f} µs (CPU {cpus['this tree']}) "
                f"per payment: {ratio:.2f}×",
                flush=True,
            )
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base_tree)],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
        shutil.rmtree(top, ignore_errors=True)
    print(
        f"{args.base} → this tree: {statistics.median(ratios):.2f}× less CPU per payment "
        f"(median of {len(ratios)} rounds; above 1 is faster)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
