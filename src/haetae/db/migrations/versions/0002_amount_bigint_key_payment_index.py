"""payments.amount as BIGINT; index idempotency_keys.payment_id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Minor units of large KRW amounts pass 2^31 (21억); INTEGER is 32-bit on PostgreSQL.
    with op.batch_alter_table("payments") as batch:
        batch.alter_column(
            "amount", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False
        )
    # Recovery finds a payment's Idempotency-Key by payment id.
    op.create_index(
        op.f("ix_idempotency_keys_payment_id"), "idempotency_keys", ["payment_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotency_keys_payment_id"), table_name="idempotency_keys")
    with op.batch_alter_table("payments") as batch:
        batch.alter_column(
            "amount", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False
        )
