"""Genuine Korean-bank activity: sessions (logins and the transfers made in them), certificate
and password upkeep, and key-in card payments. Every event is labelled 0."""

from __future__ import annotations

import numpy as np
import polars as pl

from haetae.risk.events import EventKind
from haetae.simulate.clock import ordinary_seconds, seoul_instants
from haetae.simulate.frames import (
    MICROS,
    Column,
    account_numbers,
    concat_events,
    event_frame,
    ip_addresses,
    round_won,
)
from haetae.simulate.korean_params import KoreanParams
from haetae.simulate.population import (
    DEVICES_PER_CUSTOMER,
    KOREAN_IP_OCTETS,
    MAX_PAYEES,
    Population,
    bank_codes,
)

GENUINE: dict[str, Column] = {"currency": "KRW", "label": 0}


def _daily(rng: np.random.Generator, rate: np.ndarray, days: int) -> tuple[np.ndarray, ...]:
    """(customer, day) of each event when customer c has Poisson(rate[c]) events a day."""
    per_day = rng.poisson(rate[:, None], (len(rate), days))
    slot = np.repeat(np.arange(per_day.size), per_day.ravel())
    customer, day = np.divmod(slot, days)
    return customer, day


def _devices(
    rng: np.random.Generator, pop: Population, customer: np.ndarray, day: np.ndarray
) -> np.ndarray:
    """Device slot per event: the second phone, once owned, takes about half the traffic."""
    owned = day > pop.second_device_from[customer]
    second = owned & (rng.random(len(customer)) < 0.5)
    return customer * DEVICES_PER_CUSTOMER + second


def sessions(rng: np.random.Generator, pop: Population, params: KoreanParams) -> pl.DataFrame:
    """Logins most days; some sessions transfer to usual payees or register a new one."""
    customer, day = _daily(rng, pop.login_rate, params.days)
    at = seoul_instants(params.start, day, ordinary_seconds(rng, len(customer)))
    device = pop.device_ids.gather(_devices(rng, pop, customer, day))
    roaming = np.flatnonzero(rng.random(len(customer)) < params.roaming_ip_share)
    ip = pop.ips.gather(customer).scatter(
        roaming, ip_addresses(rng, len(roaming), KOREAN_IP_OCTETS)
    )
    session = {"customer_id": pop.customer_ids.gather(customer), "device_id": device, "ip": ip}
    logins = event_frame("login", len(customer), occurred_at=at, amount=0, **session, **GENUINE)

    # Transfers to usual payees, the first payees (family, landlord) far more often.
    count = rng.poisson(pop.transfers_per_login[customer])
    which = np.repeat(np.arange(len(customer)), count)
    payer = customer[which]
    rank = (pop.payee_count[payer] * rng.random(len(which)) ** 2).astype(np.int64)
    slot = payer * MAX_PAYEES + rank
    spread = rng.lognormal(0.0, 0.35, len(which))
    usual = event_frame(
        "transfer",
        len(which),
        occurred_at=at[which] + (30 + rng.exponential(180, len(which))).astype(np.int64) * MICROS,
        amount=round_won(pop.payee_amount[slot] * spread, 1_000),
        payee_bank=pop.payee_banks.gather(slot),
        payee_account=pop.payee_accounts.gather(slot),
        **{name: values.gather(which) for name, values in session.items()},
        **GENUINE,
    )
    return concat_events([logins, usual, _new_payees(rng, params, at, session)])


def _new_payees(
    rng: np.random.Generator,
    params: KoreanParams,
    login_at: np.ndarray,
    session: dict[str, pl.Series],
) -> pl.DataFrame:
    """A genuine new payee, usually paid right away: the pattern fraud hides behind."""
    which = np.flatnonzero(rng.random(len(login_at)) < params.new_payee_per_login)
    payee = {
        "payee_bank": bank_codes(rng, len(which)),
        "payee_account": account_numbers(rng, len(which)),
    }
    who = {name: values.gather(which) for name, values in session.items()}
    added_at = login_at[which] + (20 + rng.exponential(90, len(which))).astype(np.int64) * MICROS
    added = event_frame(
        "payee_added", len(which), occurred_at=added_at, amount=0, **payee, **who, **GENUINE
    )
    paid = np.flatnonzero(rng.random(len(which)) < 0.8)
    amount = np.clip(rng.lognormal(np.log(150_000), 1.0, len(paid)), 1_000, 20_000_000)
    delay = (30 + rng.exponential(120, len(paid))).astype(np.int64) * MICROS
    first_transfer = event_frame(
        "transfer",
        len(paid),
        occurred_at=added_at[paid] + delay,
        amount=round_won(amount, 1_000),
        **{name: values.gather(paid) for name, values in {**payee, **who}.items()},
        **GENUINE,
    )
    return concat_events([added, first_transfer])


def upkeep(rng: np.random.Generator, pop: Population, params: KoreanParams) -> pl.DataFrame:
    """Certificates reissued (on a new phone, or renewed on a known one), passwords reset."""
    frames = []
    new_phone = np.flatnonzero(
        (pop.second_device_from >= 0) & (pop.second_device_from < params.days)
    )
    routine = _bernoulli_days(rng, pop.size, params.days, params.routine_reissue_per_day)
    resets = _bernoulli_days(rng, pop.size, params.days, params.password_reset_per_day)
    upkept: tuple[tuple[EventKind, tuple[np.ndarray, np.ndarray, int]], ...] = (
        ("certificate_reissue", (new_phone, pop.second_device_from[new_phone], 1)),
        ("certificate_reissue", (*routine, 0)),
        ("password_reset", (*resets, 0)),
    )
    for kind, (customer, day, slot) in upkept:
        frames.append(
            event_frame(
                kind,
                len(customer),
                occurred_at=seoul_instants(params.start, day, ordinary_seconds(rng, len(day))),
                customer_id=pop.customer_ids.gather(customer),
                amount=0,
                device_id=pop.device_ids.gather(customer * DEVICES_PER_CUSTOMER + slot),
                ip=pop.ips.gather(customer),
                **GENUINE,
            )
        )
    return concat_events(frames)


def _bernoulli_days(
    rng: np.random.Generator, customers: int, days: int, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    customer, day = np.nonzero(rng.random((customers, days)) < rate)
    return customer, day


def payments(rng: np.random.Generator, pop: Population, params: KoreanParams) -> pl.DataFrame:
    """Key-in card payments at merchants, a few declined by the issuer."""
    customer, day = _daily(rng, pop.payment_rate, params.days)
    size = len(customer)
    merchant = rng.choice(len(pop.merchant_ids), size, p=pop.merchant_weights)
    amount = pop.payment_amount[customer] * rng.lognormal(0.0, 0.7, size)
    return event_frame(
        "payment",
        size,
        occurred_at=seoul_instants(params.start, day, ordinary_seconds(rng, size)),
        customer_id=pop.customer_ids.gather(customer),
        amount=np.maximum(round_won(amount, 10), 1_000),
        card_id=pop.card_ids.gather(customer),
        terminal_id=pop.merchant_ids.gather(merchant),
        device_id=pop.device_ids.gather(_devices(rng, pop, customer, day)),
        ip=pop.ips.gather(customer),
        approved=rng.random(size) >= params.payment_decline_rate,
        **GENUINE,
    )
