"""SQLite specifics of the embedded default: who takes the file's write lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from haetae.db.engine import Database
from haetae.db.migrate import upgrade


def _other_process_can_write(path: str) -> bool:
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


async def test_reads_leave_the_write_lock_to_others_and_writes_take_it(tmp_path: Path) -> None:
    path = str(tmp_path / "lock.db")  # SQLite's file lock, whatever the suite runs on
    upgrade(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}")
    try:
        async with db.sessions() as session:
            await session.execute(text("SELECT count(*) FROM payments"))
            assert _other_process_can_write(path)
        async with db.transaction() as session:
            await session.execute(text("SELECT count(*) FROM payments"))
            assert not _other_process_can_write(path)
    finally:
        await db.dispose()
