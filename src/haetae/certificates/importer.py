"""Bulk import of certificates: a CSV of metadata, or a folder of PEM files.

CSV columns (header row required; extra columns are ignored):
``customer_id, device_id, kind, issued_at[, device_name]`` — ``kind`` is ``joint`` or
``financial``, ``issued_at`` an ISO 8601 time with its offset (``2026-03-02T09:00:00+09:00``).

PEM folder: every ``*.pem`` / ``*.crt`` file holds one certificate and is named
``<customer_id>.pem`` or ``<customer_id>__<device_id>.pem`` (the bank's export names them).

Rows are checked one by one; a bad row is rejected with its reason and the rest go in, in
batches of one transaction each (an interrupted import keeps the batches already done, and
running it again skips what is already there). Reminders are planned as for one
registration; any already due are sent by the reminder worker, not by the import.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from sqlalchemy import Table, insert, select

from haetae.certificates import reminders
from haetae.certificates.models import Certificate
from haetae.certificates.pem import PemError, parse_pem
from haetae.certificates.schedule import CertificateKind
from haetae.certificates.schemas import DeviceName, Identifier
from haetae.certificates.service import (
    NewCertificate,
    announce_registered,
    certificate_row,
    registered_event,
)
from haetae.certificates.settings import CertificateSettings
from haetae.db.engine import Database

PEM_SUFFIXES = (".pem", ".crt")
_CERTIFICATES = cast(Table, Certificate.__table__)


class CsvRow(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    customer_id: Identifier
    device_id: Identifier
    kind: CertificateKind
    issued_at: AwareDatetime
    device_name: DeviceName | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    where: str  # "line 7" or a file name
    reason: str  # short, for counting: a column name, "pem", "expired", "already registered"
    detail: str = ""


@dataclass
class ImportSummary:
    imported: int = 0
    reminders_planned: int = 0
    rejected: list[Rejected] = field(default_factory=list)


Parsed = tuple[str, NewCertificate | Rejected]


def read_csv(path: Path) -> Iterator[Parsed]:
    with path.open(newline="", encoding="utf-8-sig") as handle:  # Excel writes a BOM
        reader = csv.DictReader(handle)
        missing = {"customer_id", "device_id", "kind", "issued_at"} - set(reader.fieldnames or [])
        if missing:
            yield "header", Rejected("header", "header", f"missing {', '.join(sorted(missing))}")
            return
        for row in reader:
            where = f"line {reader.line_num}"
            try:
                parsed = CsvRow.model_validate(
                    {k: v for k, v in row.items() if v not in ("", None)}
                )
            except ValidationError as error:
                first = error.errors()[0]
                column = ".".join(str(p) for p in first["loc"]) or "row"
                yield where, Rejected(where, column, str(first["msg"]))
                continue
            yield (
                where,
                NewCertificate.from_metadata(
                    parsed.customer_id,
                    parsed.kind,
                    parsed.issued_at,
                    parsed.device_id,
                    device_name=parsed.device_name,
                ),
            )


def read_pem_folder(folder: Path, kind: CertificateKind = "joint") -> Iterator[Parsed]:
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in PEM_SUFFIXES):
        where = path.name
        customer_id, _, device_id = path.stem.partition("__")
        if not customer_id or len(customer_id) > 100 or len(device_id) > 100:
            yield where, Rejected(where, "file name", "<customer_id>[__<device_id>].pem")
            continue
        try:
            parsed = parse_pem(path.read_text(encoding="ascii", errors="replace"))
        except PemError as error:
            yield where, Rejected(where, "pem", str(error))
            continue
        yield where, NewCertificate.from_pem(customer_id, parsed, device_id or "unknown", kind=kind)


def count_items(path: Path) -> int:
    """How many rows or files an import will go through (for its progress bar)."""
    if path.is_dir():
        return sum(1 for p in path.iterdir() if p.suffix.lower() in PEM_SUFFIXES)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)


def read_any(path: Path, kind: CertificateKind = "joint") -> Iterator[Parsed]:
    return read_pem_folder(path, kind) if path.is_dir() else read_csv(path)


async def import_certificates(
    db: Database,
    settings: CertificateSettings,
    items: Iterable[Parsed],
    now: datetime,
    *,
    batch: int = 2_000,
    on_progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    summary = ImportSummary()
    pending: list[tuple[str, NewCertificate]] = []
    for where, item in items:
        if isinstance(item, Rejected):
            summary.rejected.append(item)
            if on_progress:
                on_progress(1)
            continue
        if item.not_after <= now:
            summary.rejected.append(Rejected(where, "expired", item.not_after.isoformat()))
            if on_progress:
                on_progress(1)
            continue
        pending.append((where, item))
        if len(pending) >= batch:
            await _write_batch(db, settings, pending, now, summary)
            if on_progress:
                on_progress(len(pending))
            pending = []
    if pending:
        await _write_batch(db, settings, pending, now, summary)
        if on_progress:
            on_progress(len(pending))
    return summary


def _identity(new: NewCertificate) -> tuple[str, str]:
    """What makes a row a repeat: the same PEM, or the same kind issued at the same time."""
    if new.parsed is not None:
        return new.customer_id, new.parsed.fingerprint_sha256
    return new.customer_id, _issued(new.kind, new.issued_at)


def _issued(kind: str, issued_at: datetime) -> str:
    return f"{kind}@{issued_at.astimezone(UTC).isoformat()}"  # +09:00 and UTC alike


async def _write_batch(
    db: Database,
    settings: CertificateSettings,
    batch: list[tuple[str, NewCertificate]],
    now: datetime,
    summary: ImportSummary,
) -> None:
    async with db.transaction() as session:
        customers = {new.customer_id for _, new in batch}
        known: set[tuple[str, str]] = set()
        for existing in await session.scalars(
            select(Certificate).where(Certificate.customer_id.in_(customers))
        ):
            if existing.fingerprint_sha256:
                known.add((existing.customer_id, existing.fingerprint_sha256))
            known.add((existing.customer_id, _issued(existing.kind, existing.issued_at)))
        rows: list[dict[str, Any]] = []
        for where, new in batch:
            identity = _identity(new)
            if identity in known:
                summary.rejected.append(Rejected(where, "already registered"))
                continue
            known.add(identity)
            rows.append(certificate_row(new, now))
        if not rows:
            return
        await session.execute(insert(_CERTIFICATES), rows)
        session.add_all(registered_event(row, now, method="import") for row in rows)
        summary.reminders_planned += await reminders.plan_for(
            session, settings, [(row["id"], row["not_after"]) for row in rows], now
        )
        for row in rows:
            announce_registered(session, row)
        summary.imported += len(rows)
