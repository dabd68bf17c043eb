"""`haetae certs import`: a CSV or a folder of PEM files, good rows in with their reminders,
bad rows listed with the reason, and a second run adding nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from haetae.certificates.models import Certificate, CertificateReminder
from haetae.cli import app
from haetae.db.base import utcnow
from haetae.services import Services
from haetae.timezones import SEOUL
from tests.unit.test_certificates import make_pem


@pytest.fixture
def cli_env(settings: object, database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "HAETAE_DATABASE_URL": database_url,
        "HAETAE_DATA_DIR": str(tmp_path / "cli"),
        "COLUMNS": "200",  # Rich tables unwrapped, so the reasons can be read in full
    }


def _import(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["certs", "import", *args], env=env)
    return result.exit_code, result.output


async def _counts(services: Services) -> tuple[int, int]:
    async with services.db.sessions() as session:
        certificates = await session.scalar(select(func.count()).select_from(Certificate))
        reminders = await session.scalar(select(func.count()).select_from(CertificateReminder))
    return int(certificates or 0), int(reminders or 0)


async def test_a_csv_goes_in_and_bad_rows_are_named_with_reasons(
    cli_env: dict[str, str], services: Services, tmp_path: Path
) -> None:
    recent = (utcnow() - timedelta(days=10)).astimezone(SEOUL).isoformat()  # +09:00
    lines = [
        "customer_id,device_id,kind,issued_at,device_name",
        f"c-1,phone-1,joint,{recent},Galaxy S24",
        f"c-2,phone-2,financial,{recent},",
        f"c-3,phone-3,gpki,{recent},",  # line 4: unknown kind
        "c-4,phone-4,joint,yesterday,",  # line 5: not a time
        "c-5,phone-5,joint,2020-01-01T00:00:00+09:00,",  # line 6: long expired
        f"c-1,phone-1,joint,{recent},Galaxy S24",  # line 7: a repeat of line 2
        f",phone-7,joint,{recent},",  # line 8: no customer
    ]
    path = tmp_path / "certs.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, output = await asyncio.to_thread(_import, cli_env, str(path))
    assert code == 0, output
    assert "imported 2 certificate(s), planned 8 reminder(s); rejected 5" in output
    for where, reason in [
        ("line 4", "kind"),
        ("line 5", "issued_at"),
        ("line 6", "expired"),
        ("line 7", "already registered"),
        ("line 8", "customer_id"),
    ]:
        assert any(where in line and reason in line for line in output.splitlines()), (
            where,
            output,
        )
    assert await _counts(services) == (2, 8)

    code, output = await asyncio.to_thread(_import, cli_env, str(path))  # again: nothing new
    assert "imported 0 certificate(s)" in output
    assert await _counts(services) == (2, 8)


async def test_a_folder_of_pem_files(
    cli_env: dict[str, str], services: Services, tmp_path: Path
) -> None:
    folder = tmp_path / "pems"
    folder.mkdir()
    now = datetime.now(UTC)
    (folder / "c-1__phone-1.pem").write_text(
        make_pem(now - timedelta(days=300), now + timedelta(days=65))
    )
    (folder / "c-2.crt").write_text(make_pem(now - timedelta(days=360), now + timedelta(days=5)))
    (folder / "c-3.pem").write_text("not a certificate")
    (folder / "notes.txt").write_text("ignored")
    code, output = await asyncio.to_thread(_import, cli_env, str(folder), "--kind", "financial")
    assert code == 0, output
    assert "imported 2 certificate(s)" in output and "rejected 1" in output
    assert any("c-3.pem" in line and "pem" in line for line in output.splitlines())
    async with services.db.sessions() as session:
        rows = {c.customer_id: c for c in await session.scalars(select(Certificate))}
        due = list(
            await session.scalars(
                select(CertificateReminder).where(
                    CertificateReminder.certificate_id == rows["c-2"].id
                )
            )
        )
    assert rows["c-1"].device_id == "phone-1" and rows["c-2"].device_id == "unknown"
    assert rows["c-1"].kind == "financial" and rows["c-1"].fingerprint_sha256
    # Five days left: the D-7 reminder is planned as due now, for the reminder worker.
    assert sorted(r.days_before for r in due) == [0, 1, 7]
    assert await services.reminders.drain() == 1

    bad = tmp_path / "bad.csv"
    bad.write_text("customer,device\nx,y\n")
    code, output = await asyncio.to_thread(_import, cli_env, str(bad))
    assert code == 1 and "missing" in output and "issued_at" in output
