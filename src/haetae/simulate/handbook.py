"""The card-payment simulator of the Fraud Detection Handbook (Le Borgne et al., chapter 3),
written from its published description and vectorised with numpy.

Customers and terminals sit on a plane; each customer pays at terminals within a radius of
home, a Poisson number of times a day, around noon. Three fraud scenarios are then laid on
top: (1) every amount above a threshold, (2) terminals compromised for 28 days, (3) customers
whose card is compromised for 14 days, a third of their payments inflated five times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from haetae.simulate.frames import (
    DAY_SECONDS,
    MICROS,
    PhaseHook,
    event_frame,
    midnight_us,
    no_phase,
    prefixed,
    width_for,
)

HANDBOOK_PHASES = ("customers and terminals", "card payments", "card fraud scenarios")
SCENARIOS = (None, "large_amount", "compromised_terminal", "compromised_customer")
_STREAM = 1  # keeps this profile's draws independent of the Korean one under the same seed
_CHUNK = 512  # customers per block of the customer-terminal distance matrix


@dataclass(frozen=True)
class HandbookParams:
    """The handbook's values are the defaults; amounts are in dollars."""

    customers: int = 5_000
    terminals: int = 10_000
    days: int = 183
    start: date = date(2018, 4, 1)
    grid_size: float = 100.0
    radius: float = 5.0
    min_mean_amount: float = 5.0
    max_mean_amount: float = 100.0
    max_daily_rate: float = 4.0
    time_std_seconds: float = 20_000.0
    large_amount: float = 220.0
    terminals_compromised_per_day: int = 2
    terminal_compromise_days: int = 28
    customers_compromised_per_day: int = 3
    customer_compromise_days: int = 14
    customer_fraud_share: float = 1 / 3
    customer_fraud_factor: int = 5


@dataclass(frozen=True)
class Compromises:
    """Which terminals (scenario 2) or customers (scenario 3) were compromised, on which days
    (``until`` exclusive): the ground truth behind the labels."""

    terminals: pl.DataFrame  # terminal_id, since, until
    customers: pl.DataFrame  # customer_id, since, until


@dataclass(frozen=True)
class HandbookRun:
    events: pl.DataFrame
    compromises: Compromises


@dataclass(frozen=True)
class _Payments:
    customer: np.ndarray
    terminal: np.ndarray
    day: np.ndarray
    second: np.ndarray
    cents: np.ndarray


def simulate_handbook(
    params: HandbookParams | None = None, *, seed: int = 42, on_phase: PhaseHook = no_phase
) -> HandbookRun:
    params = params or HandbookParams()
    rng = np.random.default_rng([seed, _STREAM])
    customer_xy = rng.uniform(0, params.grid_size, (params.customers, 2))
    mean_amount = rng.uniform(params.min_mean_amount, params.max_mean_amount, params.customers)
    daily_rate = rng.uniform(0, params.max_daily_rate, params.customers)
    terminal_xy = rng.uniform(0, params.grid_size, (params.terminals, 2))
    offsets, nearby = _terminals_within(customer_xy, terminal_xy, params.radius)
    on_phase(HANDBOOK_PHASES[0])

    payments = _payments(rng, params, mean_amount, daily_rate, offsets, nearby)
    on_phase(HANDBOOK_PHASES[1])

    scenario = np.where(payments.cents > round(params.large_amount * 100), 1, 0).astype(np.int8)
    terminal_picks = _compromise_terminals(rng, params, payments, scenario)
    customer_picks = _compromise_customers(rng, params, payments, scenario)
    on_phase(HANDBOOK_PHASES[2])

    events = _frame(params, payments, scenario)
    compromises = Compromises(
        terminals=_windows(
            params,
            terminal_picks,
            params.terminal_compromise_days,
            "terminal_id",
            params.terminals,
        ),
        customers=_windows(
            params,
            customer_picks,
            params.customer_compromise_days,
            "customer_id",
            params.customers,
        ),
    )
    return HandbookRun(events=events, compromises=compromises)


def _terminals_within(
    customers: np.ndarray, terminals: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's reachable terminals as one flat array with per-customer offsets (CSR),
    computed in blocks so the full distance matrix never sits in memory."""
    counts: list[np.ndarray] = []
    flat: list[np.ndarray] = []
    terminal_x, terminal_y = terminals[:, 0], terminals[:, 1]
    for first in range(0, len(customers), _CHUNK):
        block = customers[first : first + _CHUNK]
        dx = block[:, 0, None] - terminal_x
        dy = block[:, 1, None] - terminal_y
        within = dx * dx + dy * dy < radius * radius
        counts.append(within.sum(axis=1))
        flat.append(np.nonzero(within)[1])  # row-major: grouped by customer, in order
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(counts))])
    return offsets, np.concatenate(flat)


def _payments(
    rng: np.random.Generator,
    params: HandbookParams,
    mean_amount: np.ndarray,
    daily_rate: np.ndarray,
    offsets: np.ndarray,
    nearby: np.ndarray,
) -> _Payments:
    per_day = rng.poisson(daily_rate[:, None], (params.customers, params.days))
    slot = np.repeat(np.arange(per_day.size), per_day.ravel())
    customer, day = np.divmod(slot, params.days)  # sorted by customer, then day
    # As in the handbook, int() truncates, and times outside the day are dropped, not redrawn.
    second = rng.normal(DAY_SECONDS / 2, params.time_std_seconds, len(slot)).astype(np.int64)
    reachable = offsets[customer + 1] - offsets[customer]
    keep = (second > 0) & (second < DAY_SECONDS) & (reachable > 0)
    customer, day, second, reachable = customer[keep], day[keep], second[keep], reachable[keep]

    mean = mean_amount[customer]
    amount = rng.normal(mean, mean / 2)
    negative = amount < 0
    # The handbook replaces a negative draw by a uniform one between 0 and twice the mean.
    amount[negative] = rng.uniform(0, 2 * mean[negative])
    cents = np.round(amount * 100).astype(np.int64)

    pick = np.floor(rng.random(len(customer)) * reachable).astype(np.int64)
    terminal = nearby[offsets[customer] + pick]
    return _Payments(customer=customer, terminal=terminal, day=day, second=second, cents=cents)


def _daily_picks(rng: np.random.Generator, days: int, population: int, per_day: int) -> np.ndarray:
    """``per_day`` distinct members of a population drawn afresh each day: shape (days, k)."""
    count = min(per_day, population)
    return np.stack([rng.choice(population, count, replace=False) for _ in range(days)])


def _compromise_terminals(
    rng: np.random.Generator, params: HandbookParams, payments: _Payments, scenario: np.ndarray
) -> np.ndarray:
    picks = _daily_picks(rng, params.days, params.terminals, params.terminals_compromised_per_day)
    compromised = np.zeros((params.terminals, params.days), dtype=bool)
    for day, terminals in enumerate(picks):
        compromised[terminals, day : day + params.terminal_compromise_days] = True
    scenario[compromised[payments.terminal, payments.day]] = 2
    return picks


def _compromise_customers(
    rng: np.random.Generator, params: HandbookParams, payments: _Payments, scenario: np.ndarray
) -> np.ndarray:
    picks = _daily_picks(rng, params.days, params.customers, params.customers_compromised_per_day)
    # Payments are sorted by (customer, day), so each compromise window is one slice.
    key = payments.customer * params.days + payments.day
    for day, customers in enumerate(picks):
        end_day = min(day + params.customer_compromise_days, params.days)
        lows = np.searchsorted(key, customers * params.days + day)
        highs = np.searchsorted(key, customers * params.days + end_day)
        window = np.concatenate([np.arange(lo, hi) for lo, hi in zip(lows, highs, strict=True)])
        chosen = rng.choice(window, int(len(window) * params.customer_fraud_share), replace=False)
        # Windows overlap; like the handbook, a payment chosen twice is inflated twice.
        payments.cents[chosen] *= params.customer_fraud_factor
        scenario[chosen] = 3
    return picks


def _frame(params: HandbookParams, payments: _Payments, scenario: np.ndarray) -> pl.DataFrame:
    occurred = midnight_us(params.start) + (payments.day * DAY_SECONDS + payments.second) * MICROS
    # Put the events in time order while they are still numbers: cheaper than sorting strings.
    order = np.argsort(occurred, kind="stable")
    occurred, scenario = occurred[order], scenario[order]
    payments = _Payments(
        customer=payments.customer[order],
        terminal=payments.terminal[order],
        day=payments.day[order],
        second=payments.second[order],
        cents=payments.cents[order],
    )
    customer_width = width_for(params.customers)
    names = pl.Series(SCENARIOS, dtype=pl.String)
    return event_frame(
        "payment",
        len(scenario),
        occurred_at=occurred,
        customer_id=prefixed("customer-", payments.customer, customer_width),
        amount=payments.cents,
        currency="USD",
        card_id=prefixed("card-", payments.customer, customer_width),
        terminal_id=prefixed("terminal-", payments.terminal, width_for(params.terminals)),
        approved=True,
        label=(scenario > 0).astype(np.int8),
        scenario=names.gather(scenario),
    )


def _windows(
    params: HandbookParams, picks: np.ndarray, length: int, column: str, population: int
) -> pl.DataFrame:
    since_day = np.repeat(np.arange(len(picks)), picks.shape[1])
    since = midnight_us(params.start) + since_day * DAY_SECONDS * MICROS
    prefix = column.removesuffix("_id") + "-"
    return pl.DataFrame(
        {
            column: prefixed(prefix, picks.ravel(), width_for(population)),
            "since": pl.Series(since).cast(pl.Datetime("us", "UTC")),
            "until": pl.Series(since + length * DAY_SECONDS * MICROS).cast(
                pl.Datetime("us", "UTC")
            ),
        }
    )
