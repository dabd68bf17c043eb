"""The financial safety report over a year of stored history: how long it takes to compute
and render over 10,000,000 decision events (target: under 30 s).

What it does:

1. Migrates a fresh SQLite file (the real schema, Alembic) and bulk-loads a simulated year
   into it with the standard library's ``sqlite3`` (about 12 minutes for the default): ``--rows``
   risk decisions (every column filled, with rows shaped and sized like the engine's own:
   the event, the 50 feature values and the model's reasons as JSON, about 4 KiB a row on
   disk, 41 GiB for 10 million), fraud and phishing cases with their protective actions,
   notifications with their deliveries per channel, and payments whose step-up was failed
   or abandoned. The secondary indexes are dropped during the load and rebuilt after it, as
   a bulk load does; then the file is put in WAL mode, as the application runs it.
   ``--database FILE`` reuses a file made earlier with ``--keep``.
2. Times ``haetae.safety_report.service.make_report`` end to end, ``--repeat`` times
   (median), per format (``--formats pdf,html``): the metrics (SQL) and the rendering
   (charts, HTML, PDF). ``--index`` says on which schema: as migrated (with migration
   0009's covering index ``ix_risk_decisions_report``), without that index (what the report
   costs where it was dropped), or both, in one run on the same file.
   ``--drop-caches`` empties the page cache before each run (root only).
3. Checks the report's headline figures against plain SQL over the same file.
4. Writes the "Financial safety report" section of ``--out`` (bench/RESULTS.md) unless
   ``--no-write``.

    .venv/bin/python bench/reports.py [--rows 10000000] [--period 2026] [--repeat 3]
        [--formats pdf,html] [--index with|without|both] [--drop-caches]
        [--database FILE] [--workdir DIR] [--keep] [--no-check] [--out F] [--no-write]

It needs about 45 GiB free in ``--workdir`` (default /tmp) for the default rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import command_line, machine, package_versions, replace_section
from haetae.catalog import Locale
from haetae.db.migrate import upgrade
from haetae.risk.features import FEATURE_NAMES
from haetae.safety_report.period import Period, parse_period
from haetae.safety_report.render import Contacts
from haetae.safety_report.service import ReportFormat, make_report, read_metrics

SEOUL = ZoneInfo("Asia/Seoul")
TARGET_SECONDS = 30.0
# When the report is made: after the simulated year, so every challenge's expiry has passed.
NOW = datetime(2027, 1, 10, tzinfo=UTC)
CONTACTS = Contacts(phone="1599-0000", report_url="https://bank.example/report")
CHUNK = 200_000
VERSIONS = ("sqlalchemy", "polars", "matplotlib", "jinja2", "weasyprint", "numpy")

KINDS = ("payment", "transfer", "login", "payee_added", "password_reset", "certificate_reissue")
KIND_SHARES = (0.46, 0.26, 0.23, 0.03, 0.01, 0.01)
# Of every event: block, then review, then challenge (cumulative thresholds); the rest allow.
BLOCK, REVIEW, CHALLENGE = 0.006, 0.022, 0.045
RULES = (
    ("reported_account", "block"),
    ("reported_device", "block"),
    ("blocked_card", "block"),
    ("vp-large-new-payee", "block"),
    ("many-cards-one-device", "challenge"),
    ("night-new-device-transfer", "challenge"),
    ("high-score", "review"),
    ("new-payee-large-transfer", "review"),
    ("held_customer", "review"),
    ("login-burst", "challenge"),
)
REPORT_KINDS = (
    "voice_phishing",
    "smishing",
    "messenger_impersonation",
    "account_takeover",
    "card_fraud",
    "lost_card",
    "other",
)
REPORT_SHARES = (0.30, 0.22, 0.16, 0.10, 0.10, 0.08, 0.04)
ACTION_TYPES = (
    "payment_suspension",
    "suspension_request",
    "mule_list_entry",
    "transfer_hold",
    "card_block",
    "device_list_entry",
    "phone_list_entry",
)
CHANNELS = ("inbox", "push", "sms", "email")


def sqlite_time(moment: datetime) -> str:
    """How SQLAlchemy's SQLite dialect stores a UTC datetime (our ``UtcDateTime``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _times(start: datetime, end: datetime, n: int, rng: np.random.Generator) -> list[str]:
    """``n`` sorted moments in [start, end), as stored text."""
    base = np.datetime64(start.astimezone(UTC).replace(tzinfo=None), "us")
    span = int((end - start).total_seconds() * 1_000_000)
    offsets = np.sort(rng.integers(0, span, n))
    text = np.datetime_as_string(base + offsets.astype("timedelta64[us]"), unit="us")
    return [t[:10] + " " + t[11:] for t in text.tolist()]


# --- the decisions -----------------------------------------------------------------------------


def _json_pools(rng: np.random.Generator) -> dict[str, list[str]]:
    """JSON texts shaped and sized like the engine's: 64 variants of each."""
    features = []
    for _ in range(64):
        values: dict[str, object] = {}
        for name in FEATURE_NAMES:
            draw = rng.random()
            if name.startswith(("is_", "payee.is_new", "device.is_new")):
                values[name] = bool(draw < 0.5)
            elif draw < 0.25:
                values[name] = None
            elif "rate" in name or "ratio" in name or "avg" in name:
                values[name] = round(float(rng.random() * 5), 6)
            else:
                values[name] = int(rng.integers(0, 2_000_000))
        features.append(json.dumps(values))
    events = {}
    for kind in KINDS:
        events[kind] = [
            json.dumps(
                {
                    "event_id": f"rev_{i:026d}",
                    "kind": kind,
                    "occurred_at": "2026-03-01T09:00:00.000000+00:00",
                    "customer_id": f"cust-{i:07d}",
                    "amount": int(rng.integers(0, 5_000_000)),
                    "currency": "KRW",
                    "card_id": None if kind != "payment" else f"fp_{i:040d}",
                    "terminal_id": "mch_demo" if kind == "payment" else None,
                    "device_id": f"dev-{i:08d}",
                    "ip": "203.0.113.7",
                    "payee_bank": "004" if kind == "transfer" else None,
                    "payee_account": "110-222-333333" if kind == "transfer" else None,
                    "approved": None,
                    "label": None,
                    "scenario": None,
                }
            )
            for i in range(64)
        ]
    reasons = [
        json.dumps(
            [
                {
                    "code": "amount_unusual",
                    "feature": "amount",
                    "ko": f"평소 금액의 {i % 9 + 2}.{i % 10}배",
                    "en": f"amount {i % 9 + 2}.{i % 10}x the customer's usual",
                },
                {
                    "code": "payee_new",
                    "feature": "payee.is_new",
                    "ko": "처음 보내는 계좌로 이체",
                    "en": "first transfer to this account",
                },
                {
                    "code": "device_new",
                    "feature": "device.is_new",
                    "ko": "처음 보는 기기",
                    "en": "a device not seen before",
                },
            ]
        )
        for i in range(64)
    ]
    return {"features": features, "reasons": reasons, **{f"event:{k}": events[k] for k in KINDS}}


def _rule_hits(rng: np.random.Generator, decision: str) -> str:
    same = [name for name, d in RULES if d == decision]
    first = same[int(rng.integers(0, len(same)))]
    hits = [{"name": first, "version": 1, "decision": decision}]
    if rng.random() < 0.2:
        other, other_decision = RULES[int(rng.integers(0, len(RULES)))]
        if other != first:
            hits.append({"name": other, "version": 1, "decision": other_decision})
    return json.dumps(hits)


def _decision_rows(
    rows: int, start: datetime, end: datetime, seed: int
) -> Iterator[list[tuple[object, ...]]]:
    rng = np.random.default_rng(seed)
    pools = _json_pools(rng)
    hit_pool = {
        d: [_rule_hits(rng, d) for _ in range(200)] for d in ("block", "review", "challenge")
    }
    span = (end - start) / rows
    done = 0
    while done < rows:
        n = min(CHUNK, rows - done)
        chunk_start = start + span * done
        decided = _times(chunk_start, chunk_start + span * n, n, rng)
        kinds = rng.choice(len(KINDS), size=n, p=KIND_SHARES).tolist()
        draws = rng.random(n).tolist()
        amounts = rng.lognormal(11.5, 1.2, n).astype(np.int64).tolist()
        customers = rng.integers(0, 1_000_000, n).tolist()
        picks = rng.integers(0, 64, n).tolist()
        labels = rng.random(n).tolist()
        scores = rng.integers(0, 100, n).tolist()
        batch: list[tuple[object, ...]] = []
        for i in range(n):
            kind = KINDS[kinds[i]]
            draw = draws[i]
            decision = (
                "block"
                if draw < BLOCK
                else "review"
                if draw < REVIEW
                else "challenge"
                if draw < CHALLENGE
                else "allow"
            )
            moves_money = kind in ("payment", "transfer")
            amount = amounts[i] if moves_money else 0
            hits = "[]"
            if decision != "allow" and labels[i] < 0.85:
                hits = hit_pool[decision][picks[i] * 3 % 200]
            label = None
            if decision in ("review", "block") and labels[i] < 0.5:
                label = "fraud" if labels[i] < 0.3 else "genuine"
            at = decided[i]
            batch.append(
                (
                    f"rsk_{done + i:026d}",
                    f"rev_{done + i:026d}",
                    kind,
                    f"cust-{customers[i]:07d}",
                    at,
                    at,
                    amount,
                    "KRW",
                    pools[f"event:{kind}"][picks[i]],
                    decision,
                    scores[i],
                    pools["reasons"][picks[i]] if decision != "allow" else "[]",
                    hits,
                    "lgbm-2026-01-05",
                    pools["features"][picks[i]],
                    ("labelled" if label else "open") if decision == "review" else None,
                    label,
                    "analyst@bank" if label else None,
                    at if label else None,
                    None,
                )
            )
        done += n
        yield batch


def load_decisions(path: Path, rows: int, start: datetime, end: datetime, seed: int) -> None:
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'risk_decisions' AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        placeholders = ", ".join("?" * 20)
        sql = (
            "INSERT INTO risk_decisions (id, event_id, kind, customer_id, occurred_at, "
            "decided_at, amount, currency, event, decision, score, reasons, rule_hits, "
            "model_version, features, review_status, label, labelled_by, labelled_at, note) "
            f"VALUES ({placeholders})"
        )
        written = 0
        started = time.perf_counter()
        for batch in _decision_rows(rows, start, end, seed):
            conn.execute("BEGIN")
            conn.executemany(sql, batch)
            conn.execute("COMMIT")
            written += len(batch)
            if written % 1_000_000 < CHUNK:
                rate = written / (time.perf_counter() - started)
                print(f"  {written:,} decisions ({rate:,.0f}/s)", flush=True)
        print("  rebuilding the decisions' indexes ...", flush=True)
        for _, index_sql in indexes:
            conn.execute(index_sql)


# --- the other tables --------------------------------------------------------------------------


def load_others(path: Path, start: datetime, end: datetime, seed: int, scale: float) -> None:
    """Cases with actions, notifications with deliveries, and challenged payments; sized for a
    bank with ``scale`` × 10 million decisions a year."""
    rng = np.random.default_rng(seed + 1)
    cases = max(50, int(30_000 * scale))
    notices = max(200, int(600_000 * scale))
    challenged = max(20, int(8_000 * scale))
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        _load_cases(conn, rng, cases, start, end)
        _load_notifications(conn, rng, notices, start, end)
        _load_challenged_payments(conn, rng, challenged, start, end)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")


def _load_cases(
    conn: sqlite3.Connection, rng: np.random.Generator, n: int, start: datetime, end: datetime
) -> None:
    received = _times(start, end, n, rng)
    kinds = rng.choice(len(REPORT_KINDS), size=n, p=REPORT_SHARES).tolist()
    waits = rng.lognormal(4.5, 1.3, n).tolist()  # seconds to the first action: median ~90 s
    case_rows = []
    action_rows = []
    for i in range(n):
        at = datetime.fromisoformat(received[i] + "+00:00")
        first = None if rng.random() < 0.02 else sqlite_time(at + timedelta(seconds=waits[i]))
        amount = int(rng.lognormal(14, 1.5)) if kinds[i] < 5 else 0
        closed = rng.random() < 0.7
        case_rows.append(
            (
                f"case_{i:026d}",
                REPORT_KINDS[kinds[i]],
                "closed" if closed else "received",
                amount,
                "KRW",
                "",
                "report-api",
                received[i],
                first,
                sqlite_time(at + timedelta(days=3)) if closed else None,
                sqlite_time(at + timedelta(days=60)) if closed else None,
                int(amount * 0.6) if closed and amount else None,
                received[i],
            )
        )
        if first is not None:
            for j in range(int(rng.integers(1, 4))):
                kind = ACTION_TYPES[int(rng.integers(0, len(ACTION_TYPES)))]
                action_rows.append(
                    (
                        f"act_{i:024d}{j:02d}",
                        f"case_{i:026d}",
                        kind,
                        f"target-{i}",
                        "requested" if kind == "suspension_request" else "active",
                        "report",
                        "{}",
                        "haetae",
                        first,
                    )
                )
    conn.executemany(
        "INSERT INTO cases (id, kind, state, amount, currency, description, reported_by, "
        "received_at, first_action_at, decided_at, closed_at, refund_amount, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        case_rows,
    )
    conn.executemany(
        "INSERT INTO protective_actions (id, case_id, type, target, status, reason, detail, "
        "taken_by, taken_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        action_rows,
    )


def _load_notifications(
    conn: sqlite3.Connection, rng: np.random.Generator, n: int, start: datetime, end: datetime
) -> None:
    created = _times(start, end, n, rng)
    notice_rows = []
    delivery_rows = []
    for i in range(n):
        notice_rows.append(
            (
                f"ntf_{i:026d}",
                f"cust-{int(rng.integers(0, 1_000_000)):07d}",
                "fraud_report_received" if i % 3 else "certificate_expiring",
                "security",
                "ko",
                "{}",
                created[i],
            )
        )
        for j, channel in enumerate(CHANNELS):
            if j and rng.random() < 0.5:
                continue
            draw = rng.random()
            status = (
                "failed"
                if draw < 0.02
                else "suppressed"
                if draw < 0.05
                else "sent"
                if channel in ("sms", "email")
                else "delivered"
            )
            delivery_rows.append(
                (
                    f"dlv_{i:024d}{j:02d}",
                    f"ntf_{i:026d}",
                    channel,
                    status,
                    1,
                    created[i],
                    created[i],
                    created[i],
                )
            )
    conn.executemany(
        "INSERT INTO notifications (id, customer_id, kind, category, locale, context, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        notice_rows,
    )
    conn.executemany(
        "INSERT INTO deliveries (id, notification_id, channel, status, attempts, "
        "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        delivery_rows,
    )


def _load_challenged_payments(
    conn: sqlite3.Connection, rng: np.random.Generator, n: int, start: datetime, end: datetime
) -> None:
    conn.execute(
        "INSERT INTO merchants (id, name, card_policy, amount_limits, challenge_thresholds, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?)",
        ("mch_bench", "bench shop", "none", "{}", "{}", sqlite_time(start)),
    )
    created = _times(start, end, n, rng)
    payments = []
    challenges = []
    for i in range(n):
        outcome = rng.random()
        passed = outcome < 0.6
        status = "approved" if passed else "failed" if outcome < 0.85 else "challenge_required"
        challenge = "passed" if passed else "failed" if status == "failed" else "pending"
        payments.append(
            (
                f"pay_{i:026d}",
                "mch_bench",
                f"order-{i}",
                f"cust-{i:07d}",
                int(rng.lognormal(12, 1.0)),
                "KRW",
                status,
                "ko",
                "[]",
                "challenge",
                "[]",
                "none",
                0,
                created[i],
                created[i],
            )
        )
        at = datetime.fromisoformat(created[i] + "+00:00")
        challenges.append(
            (
                f"pay_{i:026d}",
                "0" * 64,
                0,
                3,
                challenge,
                "risk",
                sqlite_time(at + timedelta(minutes=5)),
                created[i],
            )
        )
    conn.executemany(
        "INSERT INTO payments (id, merchant_id, order_id, customer_id, amount, currency, "
        "status, locale, internal_flags, risk_decision, risk_reasons, reversal_status, "
        "reversal_attempts, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        payments,
    )
    conn.executemany(
        "INSERT INTO payment_challenges (payment_id, code_hash, attempts, max_attempts, "
        "status, source, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        challenges,
    )


def populate(path: Path, rows: int, period: Period, seed: int) -> float:
    """A migrated SQLite file holding the simulated history; returns the seconds it took."""
    started = time.perf_counter()
    upgrade(f"sqlite:///{path}")
    print(f"loading {rows:,} decisions and the rest into {path} ...", flush=True)
    load_decisions(path, rows, period.start, period.end, seed)
    load_others(path, period.start, period.end, seed, rows / 10_000_000)
    return time.perf_counter() - started


# --- the recommended index (a what-if until a migration adds it) ---------------------------------

REPORT_INDEX = "ix_risk_decisions_report"
REPORT_INDEX_SQL = (
    f"CREATE INDEX IF NOT EXISTS {REPORT_INDEX} ON risk_decisions "
    "(kind, decision, decided_at, currency, label, amount, rule_hits)"
)


def has_report_index(path: Path) -> bool:
    with sqlite3.connect(path) as conn:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (REPORT_INDEX,)
        ).fetchone()
    return found is not None


def used_bytes(path: Path) -> int:
    """The file's pages in use (a dropped index leaves free pages a new one reuses)."""
    with sqlite3.connect(path) as conn:
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        (free,) = conn.execute("PRAGMA freelist_count").fetchone()
        (size,) = conn.execute("PRAGMA page_size").fetchone()
    return int((pages - free) * size)


def index_bytes(path: Path) -> int | None:
    """The report index's size (SQLite's ``dbstat`` table, where it is compiled in)."""
    with sqlite3.connect(path) as conn:
        try:
            (size,) = conn.execute(
                "SELECT SUM(pgsize) FROM dbstat WHERE name = ?", (REPORT_INDEX,)
            ).fetchone()
        except sqlite3.OperationalError:
            return None
    return int(size or 0)


def drop_report_index(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(f"DROP INDEX IF EXISTS {REPORT_INDEX}")


def create_report_index(path: Path) -> float:
    started = time.perf_counter()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA cache_size=-1048576")
        conn.execute(REPORT_INDEX_SQL)
    return time.perf_counter() - started


# --- timing --------------------------------------------------------------------------------------


@dataclass
class Run:
    fmt: str
    phases: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.phases.values())


def drop_page_cache() -> bool:
    """Empty the kernel's page cache (root only), so a run reads the file from disk."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def time_report(url: str, period: Period, fmt: ReportFormat, locale: Locale) -> Run:
    phases: dict[str, float] = {}
    # The phase now running and when it began; make_report names each phase as it starts.
    phase, began = "start", time.perf_counter()

    def step(name: str) -> None:
        nonlocal phase, began
        now = time.perf_counter()
        if phase != "start":
            phases[phase] = now - began
        phase, began = name, now

    report = make_report(url, period, fmt, locale, CONTACTS, now=NOW, step=step)
    phases[phase] = time.perf_counter() - began
    assert report.content, "empty report"
    return Run(fmt, phases)


# --- checking the figures ------------------------------------------------------------------------


def check_figures(path: Path, url: str, period: Period) -> list[str]:
    """The report's headline figures against plain SQL over the same file: [] when equal."""
    metrics = read_metrics(url, period, now=NOW)
    span = (sqlite_time(period.start), sqlite_time(period.end))
    with sqlite3.connect(path) as conn:
        scored, blocked, blocked_amount = conn.execute(
            "SELECT COUNT(*), SUM(decision = 'block'), "
            "COALESCE(SUM(CASE WHEN decision = 'block' AND currency = 'KRW' THEN amount END), 0) "
            "FROM risk_decisions WHERE decided_at >= ? AND decided_at < ?",
            span,
        ).fetchone()
        (abandoned,) = conn.execute(
            "SELECT COALESCE(SUM(p.amount), 0) FROM payments p "
            "JOIN payment_challenges c ON c.payment_id = p.id "
            "WHERE p.created_at >= ? AND p.created_at < ? AND c.source = 'risk' "
            "AND p.currency = 'KRW' AND (c.status = 'failed' "
            "OR (c.status = 'pending' AND c.expires_at <= ?))",
            (*span, sqlite_time(NOW)),
        ).fetchone()
        (received,) = conn.execute(
            "SELECT COUNT(*) FROM cases WHERE received_at >= ? AND received_at < ?", span
        ).fetchone()
    summary = metrics.summary
    problems = []
    for name, got, want in (
        ("events scored", summary.events_scored, scored),
        ("blocked", summary.blocked, blocked),
        ("money prevented", summary.money_prevented, blocked_amount + abandoned),
        ("reports received", summary.reports_received, received),
    ):
        if got != want:
            problems.append(f"{name}: report {got:,}, SQL {want:,}")
    return problems


# --- main ----------------------------------------------------------------------------------------


def _median(runs: Sequence[Run]) -> float:
    return statistics.median(r.total for r in runs)


def _phase_medians(runs: Sequence[Run]) -> str:
    names = list(runs[0].phases)
    return ", ".join(
        f"{name} {statistics.median(r.phases.get(name, 0.0) for r in runs):.1f} s" for name in names
    )


def measure(args: argparse.Namespace, path: Path, label: str) -> dict[str, list[Run]]:
    url = f"sqlite:///{path}"
    period = parse_period(args.period)
    results: dict[str, list[Run]] = {}
    print(f"\n{label}", flush=True)
    for fmt in args.formats:
        runs = []
        for i in range(args.repeat):
            cold = drop_page_cache() if args.drop_caches else False
            run = time_report(url, period, fmt, args.locale)
            runs.append(run)
            phases = ", ".join(f"{k} {v:.1f} s" for k, v in run.phases.items())
            cache = " (page cache dropped)" if cold else ""
            print(f"  {fmt} run {i + 1}: {run.total:.1f} s ({phases}){cache}", flush=True)
        results[fmt] = runs
        verdict = "meets" if _median(runs) < TARGET_SECONDS else "misses"
        print(
            f"  {fmt}: median {_median(runs):.1f} s of {args.repeat} ({_phase_medians(runs)}); "
            f"{verdict} the {TARGET_SECONDS:.0f} s target",
            flush=True,
        )
    return results


SCHEMAS = {
    "without": f"without `{REPORT_INDEX}`",
    "with": f"as migrated (with `{REPORT_INDEX}`)",
}


def write_results(
    args: argparse.Namespace,
    info: dict[str, str],
    results: dict[str, dict[str, list[Run]]],
    facts: list[str],
    check: str,
) -> None:
    formats = list(next(iter(results.values()))) if results else []
    migrated = results.get("with", {})
    lines = [
        f"Machine: {info['cpus']} × {info['cpu_model']}, {info['memory']} RAM, {info['os']}; "
        f"{info['python']}. Date: {datetime.now(UTC):%Y-%m-%d}. Command: `{command_line()}`.",
        "",
        f"The {args.period} report ({args.locale}) over {args.rows:,} simulated decisions, "
        f"median of {args.repeat} runs each (target: under {TARGET_SECONDS:.0f} s).",
        "",
        "| schema | " + " | ".join(formats) + " | of which the SQL |",
        "|---|" + "---:|" * (len(formats) + 1),
    ]
    for label, figures in results.items():
        cells = [f"{_median(runs):.1f} s" for runs in figures.values()]
        sql = [
            statistics.median(r.phases.get("metrics", 0.0) for r in runs)
            for runs in figures.values()
        ]
        lines.append(
            f"| {SCHEMAS[label]} | " + " | ".join(cells) + f" | {min(sql):.1f}-{max(sql):.1f} s |"
        )
    if "with" in results and "without" in results:
        ratios = ", ".join(
            f"{fmt} {_median(results['without'][fmt]) / _median(runs):.1f}×"
            for fmt, runs in results["with"].items()
        )
        lines += ["", f"The index makes the report faster by {ratios} (same run, same file)."]
    if "with" in results:
        met = all(_median(runs) < TARGET_SECONDS for runs in results["with"].values())
        lines += ["", f"As migrated: {'meets' if met else 'misses'} the target."]
    lines += [
        "",
        *(f"- {fact}" for fact in facts),
        f"- headline figures against plain SQL: {check}",
        "- phases (as migrated, median): "
        + "; ".join(f"{fmt}: {_phase_medians(runs)}" for fmt, runs in migrated.items()),
    ]
    replace_section(args.out, "## Financial safety report (bench/reports.py)", "\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="decisions to load")
    parser.add_argument("--period", default="2026", help="the period to report (a year)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", type=lambda s: s.split(","), default=["pdf", "html"])
    parser.add_argument("--locale", choices=("ko", "en"), default="ko")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database", type=Path, help="reuse this file (made with --keep)")
    parser.add_argument("--workdir", type=Path, help="where to make the file (default: /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the file for --database")
    parser.add_argument(
        "--index",
        choices=("with", "without", "both"),
        default="both",
        help="time the schema as migrated (with the report index), without that index, or both",
    )
    parser.add_argument(
        "--drop-caches", action="store_true", help="empty the page cache before each run (root)"
    )
    parser.add_argument("--no-check", action="store_true", help="skip the figures' check")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    for fmt in args.formats:
        if fmt not in ("pdf", "html", "json"):
            parser.error(f"unknown format {fmt}")

    period = parse_period(args.period)
    workdir = (
        None
        if args.database is not None
        else Path(tempfile.mkdtemp(prefix="bench-reports-", dir=args.workdir))
    )
    info = machine()
    print(f"command: {command_line()}")
    print(f"machine: {info['cpus']} × {info['cpu_model']}, {info['memory']} RAM, {info['os']}")
    print(f"software: {info['python']}; {package_versions(VERSIONS)}")
    try:
        loaded: float | None = None
        if workdir is None:
            path = args.database
            print(f"reusing {path}")
        else:
            path = workdir / "haetae.db"
            loaded = populate(path, args.rows, period, args.seed)
            print(f"loaded in {loaded:.0f} s")
        size = used_bytes(path)
        with sqlite3.connect(path) as conn:
            (stored,) = conn.execute("SELECT MAX(rowid) FROM risk_decisions").fetchone()
        print(f"database: {size / 2**30:.1f} GiB in use, about {stored or 0:,} decisions")

        results: dict[str, dict[str, list[Run]]] = {}
        facts: list[str] = [
            f"database: SQLite, {size / 2**30:.1f} GiB in use, about {stored or 0:,} decisions"
        ]
        if loaded is not None:
            facts.append(f"loaded in {loaded:.0f} s")
        if args.index in ("without", "both"):
            drop_report_index(path)
            results["without"] = measure(args, path, f"without {REPORT_INDEX}")
        if args.index in ("with", "both"):
            if not has_report_index(path):
                print(f"\ncreating {REPORT_INDEX} ...", flush=True)
                created = create_report_index(path)
                print(f"  created in {created:.0f} s", flush=True)
                facts.append(f"{REPORT_INDEX} built in {created:.0f} s")
            measured = index_bytes(path)
            if measured is not None:
                print(f"  the index takes {measured / 2**20:,.0f} MiB")
                facts.append(f"{REPORT_INDEX} takes {measured / 2**20:,.0f} MiB")
            results["with"] = measure(args, path, f"as migrated, with {REPORT_INDEX}")
        check = "not checked"
        if not args.no_check:
            problems = check_figures(path, f"sqlite:///{path}", period)
            check = "equal" if not problems else "; ".join(problems)
            print(f"\nfigures against plain SQL: {check}")
        print(f"\nsummary (median seconds, target < {TARGET_SECONDS:.0f} s):")
        for label, figures in results.items():
            line = ", ".join(f"{fmt} {_median(runs):.1f} s" for fmt, runs in figures.items())
            print(f"  {label}: {line}")
        if not args.no_write:
            write_results(args, info, results, facts, check)
            print(f"wrote {args.out}")
    finally:
        if workdir is not None and args.keep:
            print(f"kept {workdir / 'haetae.db'} (use it again with --database)")
        elif workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
