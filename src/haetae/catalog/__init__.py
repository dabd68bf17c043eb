"""The one catalog of customer-facing text: error messages and notices, Korean and English."""

from haetae.catalog.catalog import (
    CATEGORIES,
    Catalog,
    CustomerError,
    Locale,
    catalog,
    format_money,
    negotiate_locale,
)

__all__ = [
    "CATEGORIES",
    "Catalog",
    "CustomerError",
    "Locale",
    "catalog",
    "format_money",
    "negotiate_locale",
]
