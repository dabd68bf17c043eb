"""risk rules: analysts' rules, their versions, and the named lists they use

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 02:11:26.127540
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "risk_rules",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_risk_rules_name")),
    )
    op.create_table(
        "risk_rule_versions",
        sa.Column("rule_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["risk_rules.id"],
            name=op.f("fk_risk_rule_versions_rule_id_risk_rules"),
        ),
        sa.PrimaryKeyConstraint("rule_id", "version", name=op.f("pk_risk_rule_versions")),
    )
    op.create_table(
        "risk_lists",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_risk_lists")),
    )
    op.create_table(
        "risk_list_items",
        sa.Column("list_name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_name"],
            ["risk_lists.name"],
            name=op.f("fk_risk_list_items_list_name_risk_lists"),
        ),
        sa.PrimaryKeyConstraint("list_name", "value", name=op.f("pk_risk_list_items")),
    )


def downgrade() -> None:
    op.drop_table("risk_list_items")
    op.drop_table("risk_lists")
    op.drop_table("risk_rule_versions")
    op.drop_table("risk_rules")
