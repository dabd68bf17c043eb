"""The report as a page: figures into tables and charts, through one Jinja2 template, as
HTML (charts inline as SVG) or PDF (WeasyPrint; charts as PNG)."""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from haetae.catalog import Locale, format_money
from haetae.currencies import CURRENCIES
from haetae.safety_report import texts
from haetae.safety_report.charts import PALETTE, ChartFormat, Series, horizontal_bars, stacked_bars
from haetae.safety_report.metrics import DETECTED, IN_PROGRESS, REACHED
from haetae.safety_report.period import parse_period
from haetae.safety_report.schemas import SafetyMetrics
from haetae.timezones import SEOUL

if TYPE_CHECKING:
    from haetae.config import Settings

TEMPLATES = Path(__file__).parent / "templates"
# Event kinds and report kinds in a fixed order (so a kind keeps its colour), others after.
EVENT_ORDER = tuple(texts.EVENT_KINDS)
REPORT_ORDER = tuple(texts.REPORT_KINDS)
CHANNEL_ORDER = tuple(texts.CHANNELS)


@dataclass(frozen=True, slots=True)
class Contacts:
    """Where customers report fraud (from the settings)."""

    phone: str
    report_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Contacts:
        return cls(phone=settings.contact_phone, report_url=settings.fraud_report_url)


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _ordered(keys: Iterable[str], order: Sequence[str]) -> list[str]:
    present = set(keys)
    return [k for k in order if k in present] + sorted(present - set(order))


class _View:
    """The figures arranged as the template's tables and charts, in one locale."""

    def __init__(
        self, metrics: SafetyMetrics, locale: Locale, contacts: Contacts, fmt: ChartFormat
    ) -> None:
        self.m = metrics
        self.locale = locale
        self.fmt = fmt
        self.t = texts.text(locale)
        self.period = parse_period(metrics.period)
        self.bucket_labels = [texts.bucket_label(b, locale) for b in self.period.buckets]
        self.contacts = contacts

    # --- formatting --------------------------------------------------------------------------

    def money(self, amount: int) -> str:
        return format_money(amount, self.m.currency, self.locale)

    def millions(self, amount: int) -> float:
        known = CURRENCIES.get(self.m.currency)
        exponent = known.exponent if known else 2
        return amount / 10**exponent / 1_000_000

    def chart(self, image: str | bytes) -> Markup:
        if isinstance(image, bytes):
            encoded = base64.b64encode(image).decode()
            return Markup('<img class="chart" alt="" src="data:image/png;base64,{}">').format(
                encoded
            )
        return Markup(image)  # noqa: S704 - our own matplotlib output, no outside text

    # --- sections ----------------------------------------------------------------------------

    def glance(self) -> list[tuple[str, str]]:
        s = self.m.summary
        return [
            (self.t["events_scored"], f"{s.events_scored:,}"),
            (self.t["detected"], f"{s.detected:,}"),
            (self.t["blocked"], f"{s.blocked:,}"),
            (self.t["money_prevented"], self.money(s.money_prevented)),
            (self.t["reports_received"], f"{s.reports_received:,}"),
            (
                self.t["median_first_action"],
                texts.duration(s.median_first_action_seconds, self.locale),
            ),
            (self.t["notices_sent"], f"{s.notices:,}"),
            (self.t["confirmed_fraud"], f"{s.confirmed_fraud:,}"),
        ]

    def report_trend(self) -> dict[str, Any]:
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for cell in self.m.case_trend:
            counts[(cell.bucket, cell.kind)] += cell.count
        kinds = _ordered((k for _, k in counts), REPORT_ORDER)
        return self._trend(counts, kinds, texts.REPORT_KINDS, REPORT_ORDER, "reports")

    def detected_trend(self) -> dict[str, Any]:
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for cell in self.m.decisions:
            if cell.decision in DETECTED:
                counts[(cell.bucket, cell.kind)] += cell.count
        kinds = _ordered((k for _, k in counts), EVENT_ORDER)
        return self._trend(counts, kinds, texts.EVENT_KINDS, EVENT_ORDER, "detected")

    def _trend(
        self,
        counts: dict[tuple[str, str], int],
        kinds: list[str],
        names: dict[str, dict[Locale, str]],
        order: Sequence[str],
        name: str,
    ) -> dict[str, Any]:
        keys = self.m.buckets
        rows = [
            (label, [counts.get((key, k), 0) for k in kinds])
            for key, label in zip(keys, self.bucket_labels, strict=True)
        ]
        totals = [sum(counts.get((key, k), 0) for key in keys) for k in kinds]
        series = [
            Series(
                texts.label(names, k, self.locale),
                [counts.get((key, k), 0) for key in keys],
                _colour(k, order),
            )
            for k in kinds
        ]
        return {
            "columns": [texts.label(names, k, self.locale) for k in kinds],
            "rows": [(label, values, sum(values)) for label, values in rows],
            "totals": totals,
            "total": sum(totals),
            "chart": self.chart(stacked_bars(name, self.bucket_labels, series, fmt=self.fmt))
            if kinds
            else None,
        }

    def defence(self) -> dict[str, Any]:
        by_kind: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        other = 0
        for cell in self.m.decisions:
            row = by_kind[cell.kind]
            row["scored"] += cell.count
            row[cell.decision] += cell.count
            row["fraud"] += cell.confirmed_fraud
            if cell.decision == "block":
                row["blocked_amount"] += cell.amount
            other += cell.other_currency
        kinds = _ordered(by_kind, EVENT_ORDER)
        fields = ("scored", "challenge", "review", "block", "fraud", "blocked_amount")
        total = {f: sum(by_kind[k][f] for k in kinds) for f in fields}
        return {
            "rows": [(texts.label(texts.EVENT_KINDS, k, self.locale), by_kind[k]) for k in kinds],
            "total": total,
            "other_currency": self.t["other_currency"].format(count=f"{other:,}") if other else "",
        }

    def prevented(self) -> dict[str, Any]:
        cells = self.m.prevented
        series = [
            Series(
                self.t["blocked_amount"],
                [self.millions(c.blocked_amount) for c in cells],
                PALETTE[2],
            ),
            Series(
                self.t["abandoned_amount"],
                [self.millions(c.abandoned_amount) for c in cells],
                PALETTE[3],
            ),
        ]
        any_money = any(c.amount for c in cells)
        return {
            "rows": list(zip(self.bucket_labels, cells, strict=True)),
            "total": {
                "blocked_count": sum(c.blocked_count for c in cells),
                "blocked_amount": sum(c.blocked_amount for c in cells),
                "abandoned_count": sum(c.abandoned_count for c in cells),
                "abandoned_amount": sum(c.abandoned_amount for c in cells),
                "amount": sum(c.amount for c in cells),
            },
            "chart": self.chart(
                stacked_bars(
                    "prevented",
                    self.bucket_labels,
                    series,
                    unit=self.t["unit_million_won"],
                    counts=False,
                    fmt=self.fmt,
                )
            )
            if any_money
            else None,
        }

    def response(self) -> dict[str, Any]:
        cases = sorted(
            self.m.cases,
            key=lambda c: REPORT_ORDER.index(c.kind) if c.kind in REPORT_ORDER else 99,
        )
        acted = [c for c in cases if c.median_seconds is not None]
        labels = [texts.label(texts.REPORT_KINDS, c.kind, self.locale) for c in acted]
        series = [
            Series(self.t["median"], [(c.median_seconds or 0) / 60 for c in acted], PALETTE[0]),
            Series(self.t["p90"], [(c.p90_seconds or 0) / 60 for c in acted], PALETTE[7]),
        ]
        s = self.m.summary
        return {
            "rows": [
                (
                    texts.label(texts.REPORT_KINDS, c.kind, self.locale),
                    c,
                    texts.duration(c.median_seconds, self.locale),
                    texts.duration(c.p90_seconds, self.locale),
                )
                for c in cases
            ],
            "total": {
                "received": s.reports_received,
                "acted": s.reports_acted,
                "awaiting": s.reports_received - s.reports_acted,
                "median": texts.duration(s.median_first_action_seconds, self.locale),
                "p90": texts.duration(s.p90_first_action_seconds, self.locale),
                "amount_reported": sum(c.amount_reported for c in cases),
                "refunded": sum(c.refunded for c in cases),
            },
            "chart": self.chart(
                horizontal_bars(
                    "response",
                    labels,
                    series,
                    stacked=False,
                    unit=self.t["unit_minutes"],
                    fmt=self.fmt,
                )
            )
            if acted
            else None,
        }

    def actions(self) -> dict[str, Any]:
        by_type: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        statuses: set[str] = set()
        for a in self.m.actions:
            by_type[a.type][a.status] += a.count
            statuses.add(a.status)
        status_order = _ordered(statuses, tuple(texts.ACTION_STATUSES))
        types = _ordered(by_type, tuple(texts.ACTION_TYPES))
        return {
            "columns": [texts.label(texts.ACTION_STATUSES, s, self.locale) for s in status_order],
            "rows": [
                (
                    texts.label(texts.ACTION_TYPES, t, self.locale),
                    [by_type[t].get(s, 0) for s in status_order],
                    sum(by_type[t].values()),
                )
                for t in types
            ],
            "total": sum(a.count for a in self.m.actions),
        }

    def notices(self) -> dict[str, Any]:
        by_channel: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for d in self.m.deliveries:
            group = (
                "reached"
                if d.status in REACHED
                else "in_progress"
                if d.status in IN_PROGRESS
                else d.status
                if d.status in ("failed", "suppressed")
                else "in_progress"
            )
            by_channel[d.channel][group] += d.count
            by_channel[d.channel]["total"] += d.count
        channels = _ordered(by_channel, CHANNEL_ORDER)
        groups = ("reached", "failed", "suppressed", "in_progress")
        colours = (PALETTE[1], PALETTE[2], PALETTE[7], PALETTE[3])
        series = [
            Series(self.t[g], [by_channel[c].get(g, 0) for c in channels], colour)
            for g, colour in zip(groups, colours, strict=True)
        ]
        labels = [texts.label(texts.CHANNELS, c, self.locale) for c in channels]
        return {
            "rows": [(label, by_channel[c]) for label, c in zip(labels, channels, strict=True)],
            "total": {
                g: sum(by_channel[c].get(g, 0) for c in channels) for g in (*groups, "total")
            },
            "categories": [
                (texts.label(texts.CATEGORIES, n.category, self.locale), n.count)
                for n in self.m.notices
            ],
            "chart": self.chart(
                stacked_bars("channels", labels, series, fmt=self.fmt, width=6.0, height=2.6)
            )
            if channels
            else None,
        }

    def rules(self) -> dict[str, Any]:
        rules = self.m.rules
        series = [
            Series(self.t["blocked"], [r.blocked for r in rules], PALETTE[2]),
            Series(self.t["reviewed"], [r.reviewed for r in rules], PALETTE[3]),
            Series(self.t["challenged"], [r.challenged for r in rules], PALETTE[0]),
        ]
        return {
            "rows": [(i + 1, r, self.money(r.amount)) for i, r in enumerate(rules)],
            "chart": self.chart(
                horizontal_bars(
                    "rules", [r.name for r in rules], series, stacked=True, fmt=self.fmt
                )
            )
            if rules
            else None,
        }

    def context(self) -> dict[str, Any]:
        m = self.m
        return {
            **texts.context(self.locale),
            "locale": self.locale,
            "title": texts.title(self.period, self.locale),
            "period_text": _period_text(m),
            "generated": m.generated_at.astimezone(SEOUL).strftime("%Y-%m-%d %H:%M KST"),
            "complete": m.complete,
            "glance": self.glance(),
            "report_trend": self.report_trend(),
            "detected_trend": self.detected_trend(),
            "defence": self.defence(),
            "prevented": self.prevented(),
            "response": self.response(),
            "actions": self.actions(),
            "notices": self.notices(),
            "rules": self.rules(),
            "money": self.money,
            "contacts": self.contacts,
            "bucket_heading": self.t["day"] if m.period_kind == "month" else self.t["month"],
            "for_print": self.fmt == "png",
            "prevented_definition": next(
                d for d in texts.DEFINITIONS[self.locale] if d[0] == self.t["money_prevented"]
            ),
        }


def _colour(key: str, order: Sequence[str]) -> str:
    index = order.index(key) if key in order else len(order)
    return PALETTE[index % len(PALETTE)]


def _period_text(m: SafetyMetrics) -> str:
    start = m.start.astimezone(SEOUL).date()
    last = (m.end.astimezone(SEOUL) - timedelta(days=1)).date()
    return f"{start:%Y-%m-%d} ~ {last:%Y-%m-%d}"


def render_html(
    metrics: SafetyMetrics, locale: Locale, contacts: Contacts, *, fmt: ChartFormat = "svg"
) -> str:
    """The report as one self-contained HTML page (charts inline)."""
    view = _View(metrics, locale, contacts, fmt)
    return _environment().get_template("report.html").render(view.context())


def render_pdf(metrics: SafetyMetrics, locale: Locale, contacts: Contacts) -> bytes:
    """The report as PDF: the same page, charts as PNG, laid out for A4 by WeasyPrint."""
    # Imported here: it takes a while to load. It ships no type information.
    from weasyprint import HTML  # type: ignore[import-untyped]

    html = render_html(metrics, locale, contacts, fmt="png")
    pdf: bytes = HTML(string=html).write_pdf()
    return pdf
