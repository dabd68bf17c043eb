"""Integration tests run against the real services; unreachable means failed, not skipped."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa


@pytest.fixture(scope="session", autouse=True)
def _postgres_is_reachable() -> None:
    url = os.environ.get("HAETAE_TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.fail("integration tests need HAETAE_TEST_DATABASE_URL=postgresql://...")
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure to connect fails the run
        pytest.fail(f"PostgreSQL unreachable at {url}: {exc}")
    finally:
        engine.dispose()
