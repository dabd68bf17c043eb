"""decisions looked up by event id: reissues only

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 11:00:00

Only a certificate reissue's decision is looked up by its event id (a redelivered
``certificate.reissued`` is dropped). Every decision's event id in one index put each
decision on a random page of it: measured on a file with 100,000 decisions, that index was
about 30 µs of the ~90 µs each decision costs a group commit (bench/RESULTS.md).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REISSUE_ONLY = sa.text("kind = 'certificate_reissue'")


def upgrade() -> None:
    op.drop_index("ix_risk_decisions_event", table_name="risk_decisions")
    op.create_index(
        "ix_risk_decisions_reissue_event",
        "risk_decisions",
        ["event_id"],
        sqlite_where=REISSUE_ONLY,
        postgresql_where=REISSUE_ONLY,
    )


def downgrade() -> None:
    op.drop_index("ix_risk_decisions_reissue_event", table_name="risk_decisions")
    op.create_index("ix_risk_decisions_event", "risk_decisions", ["event_id"])
