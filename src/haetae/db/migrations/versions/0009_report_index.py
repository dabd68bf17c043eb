"""covering index for the financial safety report

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 04:10:00

The report's decision queries read only this index (bench/reports.py: 132 s to 17 s for a
year of 10 million decisions). Its columns differ by dialect, which is why the models do
not declare it: PostgreSQL has no B-tree operator class for json, so the figures' columns
go in INCLUDE there; SQLite has no INCLUDE, so they are trailing key columns.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPORT_INDEX = "ix_risk_decisions_report"
LEADS = ["kind", "decision", "decided_at"]
FIGURES = ["currency", "label", "amount", "rule_hits"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(REPORT_INDEX, "risk_decisions", LEADS, postgresql_include=FIGURES)
    else:
        op.create_index(REPORT_INDEX, "risk_decisions", LEADS + FIGURES)


def downgrade() -> None:
    op.drop_index(REPORT_INDEX, table_name="risk_decisions")
