"""The queries behind rules and lists."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.risk.rules.models import RiskList, RiskListItem, RiskRule, RiskRuleVersion


async def rule_by_name(session: AsyncSession, name: str) -> RiskRule | None:
    return await session.scalar(
        select(RiskRule).where(RiskRule.name == name).execution_options(populate_existing=True)
    )


async def rules_with_current(
    session: AsyncSession, *, enabled_only: bool = False, name: str | None = None
) -> list[tuple[RiskRule, RiskRuleVersion]]:
    """Rules by name, each with its current version."""
    query = (
        select(RiskRule, RiskRuleVersion)
        .join(
            RiskRuleVersion,
            (RiskRuleVersion.rule_id == RiskRule.id)
            & (RiskRuleVersion.version == RiskRule.version),
        )
        .order_by(RiskRule.name)
        .execution_options(populate_existing=True)
    )
    if enabled_only:
        query = query.where(RiskRule.enabled.is_(True))
    if name is not None:
        query = query.where(RiskRule.name == name)
    return [(rule, version) for rule, version in await session.execute(query)]


async def versions(session: AsyncSession, rule_id: str) -> list[RiskRuleVersion]:
    return list(
        await session.scalars(
            select(RiskRuleVersion)
            .where(RiskRuleVersion.rule_id == rule_id)
            .order_by(RiskRuleVersion.version.desc())
        )
    )


async def next_version(session: AsyncSession, rule_id: str, now: datetime) -> int:
    """Take the rule's next version number. One UPDATE: two writers get two numbers (the
    row lock orders them on PostgreSQL; SQLite has one writer)."""
    version = await session.scalar(
        update(RiskRule)
        .where(RiskRule.id == rule_id)
        .values(version=RiskRule.version + 1, revision=RiskRule.revision + 1, updated_at=now)
        .returning(RiskRule.version)
        .execution_options(synchronize_session=False)
    )
    assert version is not None
    return version


async def touch_rule(session: AsyncSession, rule_id: str, now: datetime, **values: object) -> None:
    """Change the rule's settings (enabled, kinds), counting the change."""
    await session.execute(
        update(RiskRule)
        .where(RiskRule.id == rule_id)
        .values(revision=RiskRule.revision + 1, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )


async def list_names(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(RiskList.name).order_by(RiskList.name)))


async def list_summaries(session: AsyncSession) -> list[tuple[RiskList, int]]:
    counts = (
        select(RiskListItem.list_name, func.count().label("n"))
        .group_by(RiskListItem.list_name)
        .subquery()
    )
    rows = await session.execute(
        select(RiskList, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.list_name == RiskList.name)
        .order_by(RiskList.name)
    )
    return [(risk_list, int(n)) for risk_list, n in rows]


async def list_values(session: AsyncSession, name: str) -> list[str]:
    return list(
        await session.scalars(
            select(RiskListItem.value)
            .where(RiskListItem.list_name == name)
            .order_by(RiskListItem.value)
        )
    )


async def all_list_values(session: AsyncSession) -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = {name: set() for name in await list_names(session)}
    for name, value in await session.execute(select(RiskListItem.list_name, RiskListItem.value)):
        found[name].add(value)
    return {name: frozenset(values) for name, values in found.items()}


async def replace_list(
    session: AsyncSession, name: str, values: Iterable[str], now: datetime
) -> RiskList:
    """The list's values become ``values``. Updating the list row first locks it, so two
    concurrent replacements of one list run one after the other."""
    await _touch_list(session, name, now)
    await session.execute(delete(RiskListItem).where(RiskListItem.list_name == name))
    rows = [{"list_name": name, "value": value} for value in values]
    if rows:
        await session.execute(insert(RiskListItem), rows)
    found = await session.get(RiskList, name, populate_existing=True)
    assert found is not None
    return found


async def _touch_list(session: AsyncSession, name: str, now: datetime) -> None:
    """Bump the list's revision (creating it if new); the update also locks the list row."""
    changed = await session.execute(
        update(RiskList)
        .where(RiskList.name == name)
        .values(revision=RiskList.revision + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount == 0:  # type: ignore[attr-defined]
        session.add(RiskList(name=name, revision=1, created_at=now, updated_at=now))
        await session.flush()


async def add_to_list(
    session: AsyncSession, name: str, values: Iterable[str], now: datetime
) -> list[str]:
    """Add ``values`` to the list (created if new); returns those that were not there yet."""
    wanted = sorted(set(values))
    await _touch_list(session, name, now)
    present = set(
        await session.scalars(
            select(RiskListItem.value).where(
                RiskListItem.list_name == name, RiskListItem.value.in_(wanted)
            )
        )
    )
    added = [value for value in wanted if value not in present]
    if added:
        await session.execute(
            insert(RiskListItem), [{"list_name": name, "value": v} for v in added]
        )
    return added


async def remove_from_list(
    session: AsyncSession, name: str, values: Iterable[str], now: datetime
) -> None:
    await _touch_list(session, name, now)
    await session.execute(
        delete(RiskListItem).where(
            RiskListItem.list_name == name, RiskListItem.value.in_(sorted(set(values)))
        )
    )


async def stamp(session: AsyncSession) -> int:
    """A number that grows with every change to rules or lists (the sum of revisions)."""
    rules = select(func.coalesce(func.sum(RiskRule.revision), 0)).scalar_subquery()
    lists = select(func.coalesce(func.sum(RiskList.revision), 0)).scalar_subquery()
    return int(await session.scalar(select(rules + lists)) or 0)
