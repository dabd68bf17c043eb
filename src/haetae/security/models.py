from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from haetae.db.base import Base, utcnow


class ApiKey(Base):
    """An API key, stored only as a SHA-256 hash of its secret part."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # "merchant" or "service"
    name: Mapped[str] = mapped_column(String(200))
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"), default=None)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class VaultKey(Base):
    """A data-encryption key for stored card numbers, wrapped by the master key (RFC 3394)."""

    __tablename__ = "vault_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    wrapped_key: Mapped[bytes]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(default=None)
