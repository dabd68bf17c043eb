"""Fraud reports: the time from a report's arrival to the payment suspension being in force.

``haetae serve`` on its embedded defaults (SQLite, in-process bus) as a subprocess; a
client posts voice-phishing reports, each naming a fresh account held here, and measures
each ``POST /v1/fraud-reports`` from sending to the answer. The suspension is in force when
the answer arrives (the report's transaction has committed and the rules have reloaded),
and the client checks that on every report: a transfer to that account, evaluated right
after the answer, must come back ``block``. One client at a time (latency), then several
concurrent clients (throughput and the tail under load).

    .venv/bin/python bench/suspension.py [--reports 400] [--concurrency 8] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    clean_env,
    command_line,
    free_port,
    machine,
    percentile,
    replace_section,
    start_child,
    wait_for_http,
    wait_until_quiet,
)

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HEADING = "## Fraud reports: time to payment suspension"
TARGET_P99_MS = 200.0


def report_body(n: int) -> dict[str, Any]:
    return {
        "kind": "voice_phishing",
        "reporter": {"customer_id": f"victim-{n}"},
        "victim": {"customer_id": f"victim-{n}"},
        "suspect_accounts": [{"bank_code": "090", "account_number": f"3333-77-{n:07d}"}],
        "amount": 3_000_000,
        "occurred_at": datetime.now(UTC).isoformat(),
        "description": "bench",
    }


async def one(client: httpx.AsyncClient, headers: dict[str, str], n: int) -> float:
    started = time.perf_counter()
    response = await client.post("/v1/fraud-reports", json=report_body(n), headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 201:
        raise RuntimeError(f"report {n}: HTTP {response.status_code} {response.text[:300]}")
    check = await client.post(
        "/v1/risk/evaluate",
        json={
            "kind": "transfer",
            "customer_id": f"sender-{n}",
            "occurred_at": datetime.now(UTC).isoformat(),
            "amount": 10_000,
            "payee": {"bank_code": "090", "account_number": f"333377{n:07d}"},
        },
        headers=headers,
    )
    if check.json().get("decision") != "block":
        raise RuntimeError(f"report {n}: the account was not blocked: {check.text[:300]}")
    return elapsed


async def run(base: str, key: str, reports: int, concurrency: int) -> dict[str, list[float]]:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency + 2)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        for n in range(20):  # warm-up: first rule load, connection set-up
            await one(client, headers, 10_000_000 + n)
        serial = [await one(client, headers, n) for n in range(reports)]
        counter = iter(range(reports, reports * 2))
        loaded: list[float] = []

        async def worker() -> None:
            for n in counter:
                loaded.append(await one(client, headers, n))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {"serial": serial, "loaded": loaded, "wall": [wall]}


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"median {statistics.median(ordered):.1f} ms, p90 {percentile(ordered, 90):.1f} ms, "
        f"p99 {percentile(ordered, 99):.1f} ms, max {ordered[-1]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--wait-quiet", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="haetae-suspension-"))
    env = clean_env(
        {
            "HAETAE_DATA_DIR": str(workdir / "data"),
            "HAETAE_MODELS_DIR": str(workdir / "no-models"),
            "HAETAE_LOG_LEVEL": "WARNING",
        }
    )
    cli = [PYTHON, "-m", "haetae.cli"]
    created = subprocess.run(
        [*cli, "keys", "create", "--service", "bench-cases", "--scope", "cases", "--scope", "risk"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    key = created.stdout.strip().splitlines()[-1]
    port = free_port()
    server = start_child(
        "server", [*cli, "serve", "--port", str(port)], env=env, log_dir=workdir, cwd=ROOT
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", server)
        wait_until_quiet(args.wait_quiet)
        results = asyncio.run(run(f"http://127.0.0.1:{port}", key, args.reports, args.concurrency))
    finally:
        server.stop()
    serial, loaded, wall = results["serial"], results["loaded"], results["wall"][0]
    p99 = percentile(sorted(serial), 99)
    verdict = (
        f"**met** ({TARGET_P99_MS / p99:.1f}× headroom)"
        if p99 < TARGET_P99_MS
        else f"**missed** ({p99 / TARGET_P99_MS:.2f}× over)"
    )
    lines = [
        f"One client: {summary(serial)} over {len(serial)} reports.",
        f"{args.concurrency} concurrent clients: {summary(loaded)}; "
        f"{len(loaded) / wall:,.0f} reports/s.",
        f"Target p99 under {TARGET_P99_MS:.0f} ms (one client): {verdict}.",
    ]
    print("\n".join(lines))
    if not args.no_write:
        info = machine()
        body = "\n\n".join(
            [
                "Each report names a fresh account held here; the time is from sending "
                "`POST /v1/fraud-reports` to its answer (case, actions, notices, lists and the "
                "rules' reload committed). After every answer the client evaluates a transfer "
                "to that account and requires `block`: none failed.",
                "\n".join(f"- {line}" for line in lines),
                f"Machine: {info['cpu_model']}, {info['cpus']} CPUs, {info['memory']}; "
                f"Python {info['python']}; {datetime.now(UTC):%Y-%m-%d}; `{command_line()}`; "
                "`haetae serve` on SQLite in a temporary directory, no model, "
                "`HAETAE_LOG_LEVEL=WARNING`.",
            ]
        )
        replace_section(args.out, HEADING, body)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
