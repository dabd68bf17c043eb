"""Imports every domain's tables so that Alembic and the tests see the whole schema."""

from __future__ import annotations


def import_all_models() -> None:
    import haetae.bus.models
    import haetae.cases.models
    import haetae.certificates.models
    import haetae.consortium.models
    import haetae.merchants.models
    import haetae.notify.models
    import haetae.payments.models
    import haetae.risk.decisions.models
    import haetae.risk.rules.models
    import haetae.security.models  # noqa: F401
