"""Analysts' rules, every version of their text, and the named lists rules refer to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from haetae.db.base import Base, utcnow


class RiskRule(Base):
    """A rule as it applies now; the text of each version is in RiskRuleVersion.

    ``revision`` grows by one on every change (new version, enable, disable, kinds), and
    lists have one too: their sum tells another process cheaply that it must reload.
    """

    __tablename__ = "risk_rules"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    version: Mapped[int] = mapped_column(Integer)  # the current version
    enabled: Mapped[bool] = mapped_column(default=True)
    kinds: Mapped[list[str] | None] = mapped_column(JSON, default=None)  # None: every kind
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskRuleVersion(Base):
    __tablename__ = "risk_rule_versions"

    rule_id: Mapped[str] = mapped_column(ForeignKey("risk_rules.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(String(10))  # as written in the text, for listing
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))  # the API key's name


class RiskList(Base):
    """A named list (``@mule_accounts``): text values a rule tests with ``in``."""

    __tablename__ = "risk_lists"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskListItem(Base):
    __tablename__ = "risk_list_items"

    list_name: Mapped[str] = mapped_column(ForeignKey("risk_lists.name"), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
