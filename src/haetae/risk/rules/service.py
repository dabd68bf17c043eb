"""The rule book: analysts' rules and lists (create, new version, enable, disable), the
compiled rules the engine evaluates, and backtests.

Changes take effect at once in this process: after each change commits, the rules are
read again and compiled into a new :class:`RuleSet`. Other processes notice within
``poll_seconds``: :meth:`RuleBook.current` compares a change counter (the sum of the rules'
and lists' ``revision``, which every change increases) with the one its rules were read at,
at most once per ``poll_seconds``, and reloads when it moved. No clocks are compared, so
skew between hosts does not hide a change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TypeVar

import polars as pl
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.db.base import new_id
from haetae.db.engine import Database
from haetae.errors import HaetaeError
from haetae.risk.rules import repository
from haetae.risk.rules.backtest import BacktestResult, run_backtest
from haetae.risk.rules.compiler import Values
from haetae.risk.rules.errors import RuleError
from haetae.risk.rules.history import HistorySource, HistoryUnavailable
from haetae.risk.rules.models import RiskList, RiskRule, RiskRuleVersion
from haetae.risk.rules.names import ValueType
from haetae.risk.rules.nodes import Decision, Rule
from haetae.risk.rules.ruleset import RuleHit, RuleSet, compile_rule
from haetae.risk.rules.validate import parse_rule

log = structlog.get_logger(__name__)
T = TypeVar("T")


class Keep(Enum):
    """For an update: leave the setting as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class RuleView:
    name: str
    version: int
    text: str
    decision: Decision
    kinds: list[str] | None  # None: every kind
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, rule: RiskRule, current: RiskRuleVersion) -> RuleView:
        return cls(
            name=rule.name,
            version=rule.version,
            text=current.text,
            decision=_decision(current.decision),
            kinds=rule.kinds,
            enabled=rule.enabled,
            created_at=rule.created_at,
            updated_at=rule.updated_at,
        )


@dataclass(frozen=True, slots=True)
class VersionView:
    version: int
    text: str
    decision: Decision
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class Saved:
    rule: RuleView
    created: bool  # False: a new version of a rule that existed (or no change at all)


@dataclass(frozen=True, slots=True)
class ListView:
    name: str
    values: list[str]
    updated_at: datetime


def _decision(text: str) -> Decision:
    for decision in ("allow", "challenge", "review", "block"):
        if text == decision:
            return decision
    raise ValueError(f"not a decision: {text!r}")


def rule_invalid(error: RuleError) -> HaetaeError:
    return HaetaeError(
        "rule_invalid",
        field="rule",
        params={
            "line": error.line,
            "column": error.column,
            "detail": error.message,
            "kind": error.kind,
        },
    )


class RuleBook:
    """``features``: the names the feature pipeline provides, with their types (the event's
    names are always known). ``history``: where backtests read past events; without one,
    backtests answer ``backtest_unavailable``. Both are set by the wiring."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime],
        features: Mapping[str, ValueType] | None = None,
        history: HistorySource | None = None,
        poll_seconds: float = 5.0,
    ) -> None:
        self._db = db
        self._clock = clock
        self.features: Mapping[str, ValueType] = dict(features or {})
        self.history = history
        self._poll_seconds = poll_seconds
        self._rules = RuleSet((), {})
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    # --- the engine's side ------------------------------------------------------------

    def evaluate(self, kind: str, values: Values) -> list[RuleHit]:
        """The rules in force that hit this event, most severe first (no I/O: the rules as
        last loaded; call :meth:`current` now and then, or use its result)."""
        return self._rules.evaluate(kind, values)

    async def current(self) -> RuleSet:
        """The rules in force, reloaded when another process changed them (checked at most
        once per ``poll_seconds``)."""
        if time.monotonic() - self._checked_at < self._poll_seconds:
            return self._rules
        async with self._lock:
            if time.monotonic() - self._checked_at >= self._poll_seconds:
                async with self._db.sessions() as session:
                    stamp = await repository.stamp(session)
                if stamp != self._rules.stamp:
                    await self.reload()
                self._checked_at = time.monotonic()
        return self._rules

    async def reload(self) -> RuleSet:
        """Read and compile the enabled rules and all lists now."""
        async with self._db.sessions() as session:
            # The counter first: the rules read after it are at least as new as it says.
            stamp = await repository.stamp(session)
            rows = await repository.rules_with_current(session, enabled_only=True)
            lists = await repository.all_list_values(session)
        compiled = []
        for rule, current in rows:
            try:
                parsed = parse_rule(current.text, self.features, lists.keys())
            except RuleError as error:
                # Valid when saved; a feature since renamed or retyped. Skipped, loudly.
                log.error(
                    "risk_rule_unusable", rule=rule.name, version=rule.version, error=str(error)
                )
                continue
            compiled.append(compile_rule(rule.name, rule.version, parsed, rule.kinds))
        loaded = RuleSet(compiled, lists, stamp)
        if loaded.stamp >= self._rules.stamp:  # a slower, older reload must not win
            self._rules = loaded
        return self._rules

    async def extend_lists(self, additions: Mapping[str, Iterable[str]], touches: int) -> RuleSet:
        """Put values a committed transaction added to lists in force, without reading every
        rule and list again (a fraud report adds a few values to lists that grow large).
        ``touches``: the list revisions that transaction bumped. The change counter only
        grows, so if it moved by exactly that much since the rules in memory were read,
        nothing else changed meanwhile and adding the values is the same as a reload;
        otherwise this reloads."""
        async with self._lock:
            async with self._db.sessions() as session:
                stamp = await repository.stamp(session)
            current = self._rules
            if current.stamp < 0 or stamp != current.stamp + touches:
                return await self.reload()
            lists = dict(current.lists)
            for name, values in additions.items():
                lists[name] = frozenset(lists.get(name, ())).union(values)
            self._rules = RuleSet(current.rules, lists, stamp)
            return self._rules

    # --- rules --------------------------------------------------------------------------

    async def save(
        self,
        name: str,
        text: str,
        *,
        author: str,
        kinds: Sequence[str] | Keep | None = KEEP,
        enabled: bool | None = None,
    ) -> Saved:
        """Create the rule, or make ``text`` its new version (the same text again: no new
        version). ``kinds`` None means every kind; KEEP (and ``enabled`` None) keeps the
        rule's setting, or on creation: every kind, enabled."""
        rule = parse_rule_or_fail(text, self.features, await self._list_names())

        async def save_in(session: AsyncSession) -> Saved:
            return await self._save(session, name, rule, author, kinds, enabled)

        saved = await self._write(save_in)
        await self.reload()
        return saved

    async def _save(
        self,
        session: AsyncSession,
        name: str,
        rule: Rule,
        author: str,
        kinds: Sequence[str] | Keep | None,
        enabled: bool | None,
    ) -> Saved:
        now = self._clock()
        wanted_kinds = None if isinstance(kinds, Keep) or kinds is None else sorted(set(kinds))
        existing = await repository.rule_by_name(session, name)
        if existing is None:
            row = RiskRule(
                id=new_id("rule"),
                name=name,
                version=1,
                enabled=True if enabled is None else enabled,
                kinds=wanted_kinds,
                revision=1,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            version = self._version_row(row.id, 1, rule, author, now)
            session.add(version)
            await session.flush()
            return Saved(RuleView.of(row, version), created=True)
        [(_, current)] = await repository.rules_with_current(session, name=name)
        changes: dict[str, object] = {}
        if not isinstance(kinds, Keep) and wanted_kinds != existing.kinds:
            changes["kinds"] = wanted_kinds
        if enabled is not None and enabled != existing.enabled:
            changes["enabled"] = enabled
        if rule.text != current.text:
            number = await repository.next_version(session, existing.id, now)
            session.add(self._version_row(existing.id, number, rule, author, now))
            await session.flush()
        if changes:
            await repository.touch_rule(session, existing.id, now, **changes)
        [(row, current)] = await repository.rules_with_current(session, name=name)
        return Saved(RuleView.of(row, current), created=False)

    @staticmethod
    def _version_row(
        rule_id: str, number: int, rule: Rule, author: str, now: datetime
    ) -> RiskRuleVersion:
        return RiskRuleVersion(
            rule_id=rule_id,
            version=number,
            text=rule.text,
            decision=rule.decision,
            created_at=now,
            created_by=author,
        )

    async def set_enabled(self, name: str, enabled: bool) -> RuleView:
        async with self._db.transaction() as session:
            rule = await self._rule(session, name)
            if rule.enabled != enabled:
                await repository.touch_rule(session, rule.id, self._clock(), enabled=enabled)
            [(row, current)] = await repository.rules_with_current(session, name=name)
            view = RuleView.of(row, current)
        await self.reload()
        return view

    async def get(self, name: str) -> tuple[RuleView, list[VersionView]]:
        async with self._db.sessions() as session:
            rule = await self._rule(session, name)
            [(row, current)] = await repository.rules_with_current(session, name=name)
            versions = await repository.versions(session, rule.id)
        return RuleView.of(row, current), [
            VersionView(v.version, v.text, _decision(v.decision), v.created_at, v.created_by)
            for v in versions
        ]

    async def all(self) -> list[RuleView]:
        async with self._db.sessions() as session:
            rows = await repository.rules_with_current(session)
        return [RuleView.of(rule, current) for rule, current in rows]

    @staticmethod
    async def _rule(session: AsyncSession, name: str) -> RiskRule:
        rule = await repository.rule_by_name(session, name)
        if rule is None:
            raise HaetaeError("rule_not_found", field="name", params={"name": name})
        return rule

    # --- lists --------------------------------------------------------------------------

    async def put_list(self, name: str, values: Sequence[str]) -> ListView:
        """The list ``@name`` holds exactly ``values`` from now on (created if new)."""
        unique = sorted(set(values))

        async def replace_in(session: AsyncSession) -> datetime:
            row = await repository.replace_list(session, name, unique, self._clock())
            return row.updated_at

        updated_at = await self._write(replace_in)
        await self.reload()
        return ListView(name, unique, updated_at)

    async def add_to_list(self, name: str, values: Sequence[str]) -> list[str]:
        """Add ``values`` to ``@name`` (created if new), in force here at once; returns the
        values that were new. Inside another transaction use ``repository.add_to_list`` and
        call :meth:`reload` after it commits."""

        async def add_in(session: AsyncSession) -> list[str]:
            return await repository.add_to_list(session, name, values, self._clock())

        added = await self._write(add_in)
        await self.reload()
        return added

    async def get_list(self, name: str) -> ListView:
        async with self._db.sessions() as session:
            found = await session.get(RiskList, name)
            if found is None:
                raise HaetaeError("risk_list_not_found", field="name", params={"name": name})
            values = await repository.list_values(session, name)
        return ListView(name, values, found.updated_at)

    async def lists(self) -> list[tuple[str, int, datetime]]:
        """Every list: name, how many values, last changed."""
        async with self._db.sessions() as session:
            rows = await repository.list_summaries(session)
        return [(row.name, count, row.updated_at) for row, count in rows]

    # --- backtests ----------------------------------------------------------------------

    async def backtest(
        self,
        text: str,
        *,
        kinds: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> BacktestResult:
        """What ``text`` would have done to the history's events (see :mod:`.backtest`)."""
        history = self.history
        if history is None:
            raise _unavailable("no event history is configured")
        async with self._db.sessions() as session:
            lists = await repository.all_list_values(session)
        rule = parse_rule_or_fail(text, self.features, lists.keys())

        def run() -> BacktestResult:
            return run_backtest(
                rule, history.scan(), lists, self.features, kinds=kinds, since=since, until=until
            )

        try:
            # Polars works outside the GIL; the event loop keeps serving meanwhile.
            return await asyncio.to_thread(run)
        except HistoryUnavailable as error:
            raise _unavailable(str(error)) from None
        except pl.exceptions.PolarsError as error:
            raise _unavailable(f"the history cannot be read: {str(error)[:300]}") from None

    # --- helpers ------------------------------------------------------------------------

    async def _list_names(self) -> list[str]:
        async with self._db.sessions() as session:
            return await repository.list_names(session)

    async def _write(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """One transaction; once more if it lost a race to create the same row (a unique
        name or list taken meanwhile: the second try finds it and updates it)."""
        try:
            async with self._db.transaction() as session:
                return await work(session)
        except IntegrityError:
            async with self._db.transaction() as session:
                return await work(session)


def parse_rule_or_fail(text: str, known: Mapping[str, ValueType], lists: Collection[str]) -> Rule:
    """:func:`parse_rule`, with a :class:`RuleError` as the API's ``rule_invalid``."""
    try:
        return parse_rule(text, known, lists)
    except RuleError as error:
        raise rule_invalid(error) from None


def _unavailable(detail: str) -> HaetaeError:
    return HaetaeError("backtest_unavailable", params={"detail": detail})
