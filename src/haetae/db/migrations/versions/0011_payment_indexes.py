"""payments: no index of the merchant alone, owed reversals only in the reversal index

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 18:20:00

Every payment's INSERT wrote an entry into each of the table's indexes, two of them for
nothing: ``ix_payments_merchant_id`` repeats the first column of
``ix_payments_merchant_order``, which serves every look-up by merchant; and
``ix_payments_reversal_pending`` held every payment by a status that is ``none`` for
nearly all, while the sweep reads only those owing a reversal. Each index entry cost a
payment's write about 5 µs, and the commit one more changed page (bench/RESULTS.md).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REVERSAL_OWED = sa.text("reversal_status IN ('pending', 'sending')")


def upgrade() -> None:
    op.drop_index("ix_payments_merchant_id", table_name="payments")
    op.drop_index("ix_payments_reversal_pending", table_name="payments")
    op.create_index(
        "ix_payments_reversal_owed",
        "payments",
        ["reversal_status"],
        sqlite_where=REVERSAL_OWED,
        postgresql_where=REVERSAL_OWED,
    )


def downgrade() -> None:
    op.drop_index("ix_payments_reversal_owed", table_name="payments")
    op.create_index("ix_payments_reversal_pending", "payments", ["reversal_status"])
    op.create_index("ix_payments_merchant_id", "payments", ["merchant_id"])
