"""Payment queries. Writes on the hot path are single Core statements.

The create path keeps its payment as plain state (a ``PaymentDraft``) and never attaches it
to a session: an ORM flush of this 35-column row, with its change tracking, measured as the
largest single cost of a payment (bench/RESULTS.md). Core ``INSERT``/``UPDATE`` from the
attributes that are set does the same work in one statement; column defaults still apply.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.db.engine import Statements, queue
from haetae.errors import HaetaeError
from haetae.payments.draft import PaymentState, set_columns
from haetae.payments.models import Payment

_PAYMENTS = cast(Table, Payment.__table__)


# Constant statements, values passed at execution: SQLAlchemy then reuses the compiled form
# instead of coercing every value into a bound parameter and hashing a new cache key.
_INSERT = insert(_PAYMENTS)
_UPDATE = update(_PAYMENTS).where(
    _PAYMENTS.c.id == bindparam("payment_id"), _PAYMENTS.c.status == bindparam("expected_status")
)


async def insert_payment(session: Statements, payment: PaymentState) -> None:
    await queue(session, _INSERT, set_columns(payment))


def stored_state(payment: PaymentState) -> dict[str, Any]:
    """The payment's column values as just written, for :func:`update_payment` to compare
    with (lists and dicts copied: a change made in place must still show)."""
    return {
        key: value.copy() if isinstance(value, list | dict) else value
        for key, value in set_columns(payment).items()
    }


async def update_payment(
    session: Statements,
    payment: PaymentState,
    expected_status: str,
    *,
    stored: dict[str, Any] | None = None,
) -> bool:
    """Write the payment only if its row is still in ``expected_status`` (the status this
    request last wrote). False means someone else, e.g. recovery, decided it meanwhile.

    With ``stored`` (:func:`stored_state` of the last write), only the columns that changed
    since are set: SQLite rewrites the entry of every index on a column an UPDATE sets,
    changed or not, and the payment row has five besides its key (an outcome's update cost
    about three times as much with every column set)."""
    values = set_columns(payment)
    if stored is not None:
        values = {
            key: value
            for key, value in values.items()
            if key == "id" or key not in stored or stored[key] != value
        }
    values["payment_id"] = values.pop("id")
    values["expected_status"] = expected_status
    result = await session.execute(_UPDATE, values)
    return bool(result.rowcount)  # type: ignore[union-attr]  # a CursorResult when DML


async def get_owned(
    session: AsyncSession, merchant_id: str | None, payment_id: str, *, lock: bool = False
) -> Payment:
    """A merchant sees only its own payments; another's is "not found", not "forbidden", so
    ids reveal nothing. ``merchant_id`` None is one of the bank's own services."""
    query = select(Payment).where(Payment.id == payment_id)
    if merchant_id is not None:
        query = query.where(Payment.merchant_id == merchant_id)
    if lock:
        query = query.with_for_update()
    payment = await session.scalar(query)
    if payment is None:
        raise HaetaeError("payment_not_found", field="id")
    return payment


async def owe_reversal(session: AsyncSession, payment_id: str, *, reason: str) -> None:
    await session.execute(
        update(_PAYMENTS)
        .where(_PAYMENTS.c.id == payment_id)
        .values(reversal_status="pending", reversal_reason=reason)
    )
