"""The fraud Korean banks fight most, each case as a short sequence of labelled events.

- voice_phishing: the victim, talked into it on the phone, lets the fraudster reissue the
  certificate on a new device; within hours (often at night) a new payee is added and 1-3
  large transfers leave for it.
- card_testing: one device and IP tries many customers' cards with small key-in payments
  within minutes; most are declined.
- account_takeover: a login from a new device and IP, a password reset, a transfer out to a
  new payee.
- mule_account: many unrelated customers send money to one customer's account, which
  forwards almost all of it within minutes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from haetae.simulate.clock import (
    fraud_seconds,
    ordinary_seconds,
    running_offsets,
    seconds_between,
    seoul_instants,
)
from haetae.simulate.frames import (
    MICROS,
    Column,
    account_numbers,
    concat_events,
    event_frame,
    ip_addresses,
    opaque_ids,
    round_won,
)
from haetae.simulate.korean_params import KoreanParams
from haetae.simulate.population import (
    DEVICES_PER_CUSTOMER,
    KOREAN_IP_OCTETS,
    Population,
    bank_codes,
)

# Fraudsters also come through hosting and proxy networks abroad.
FRAUD_IP_OCTETS = (*KOREAN_IP_OCTETS, 45, 103, 104, 185, 193)

Scenario = Callable[[np.random.Generator, Population, KoreanParams], pl.DataFrame]


def _tag(scenario: str) -> dict[str, Column]:
    return {"currency": "KRW", "label": 1, "scenario": scenario}


def _cases(rng: np.random.Generator, rate: float, params: KoreanParams, cap: int) -> int:
    expected = rate * params.customers / 10_000 * params.days
    return min(int(rng.poisson(expected)), cap)


def _start_days(rng: np.random.Generator, size: int, params: KoreanParams, tail: int) -> np.ndarray:
    """Start days leaving ``tail`` days for a case to finish inside the run."""
    return rng.integers(0, max(params.days - tail, 1), size)


def _gather(columns: dict[str, pl.Series], index: np.ndarray) -> dict[str, pl.Series]:
    return {name: values.gather(index) for name, values in columns.items()}


def voice_phishing(rng: np.random.Generator, pop: Population, params: KoreanParams) -> pl.DataFrame:
    size = _cases(rng, params.fraud.voice_phishing, params, pop.size)
    victim = rng.choice(pop.size, size, replace=False)
    reissued_at = seoul_instants(
        params.start, _start_days(rng, size, params, 1), fraud_seconds(rng, size, 0.7)
    )
    who = {
        "customer_id": pop.customer_ids.gather(victim),
        "device_id": opaque_ids(rng, size, "dev-"),
        "ip": ip_addresses(rng, size, FRAUD_IP_OCTETS),
    }
    payee = {"payee_bank": bank_codes(rng, size), "payee_account": account_numbers(rng, size)}
    login_at = reissued_at + seconds_between(rng, 60, 600, size) * MICROS
    added_at = login_at + seconds_between(rng, 300, 3 * 3600, size) * MICROS
    transfers = rng.integers(1, 4, size)
    case = np.repeat(np.arange(size), transfers)
    gaps = seconds_between(rng, 60, 1800, len(case)) * MICROS
    tag = _tag("voice_phishing")
    return concat_events(
        [
            event_frame(
                "certificate_reissue", size, occurred_at=reissued_at, amount=0, **who, **tag
            ),
            event_frame("login", size, occurred_at=login_at, amount=0, **who, **tag),
            event_frame("payee_added", size, occurred_at=added_at, amount=0, **who, **payee, **tag),
            event_frame(
                "transfer",
                len(case),
                occurred_at=added_at[case] + running_offsets(gaps, transfers),
                amount=round_won(rng.uniform(3e6, 30e6, len(case)), 10_000),
                **_gather({**who, **payee}, case),
                **tag,
            ),
        ]
    )


def card_testing(rng: np.random.Generator, pop: Population, params: KoreanParams) -> pl.DataFrame:
    size = _cases(rng, params.fraud.card_testing, params, cap=10**6)
    attempts = np.minimum(rng.integers(50, 301, size), pop.size)
    attack = np.repeat(np.arange(size), attempts)
    cards = [rng.choice(pop.size, count, replace=False) for count in attempts]
    owner = np.concatenate(cards) if cards else np.zeros(0, dtype=np.int64)
    started_at = seoul_instants(
        params.start, _start_days(rng, size, params, 1), fraud_seconds(rng, size, 0.6)
    )
    # Scripted attempts, a few seconds apart.
    gaps = ((rng.exponential(4.0, len(attack)) + 0.5) * MICROS).astype(np.int64)
    merchant = rng.integers(0, len(pop.merchant_ids), size)
    return event_frame(
        "payment",
        len(attack),
        occurred_at=started_at[attack] + running_offsets(gaps, attempts),
        customer_id=pop.customer_ids.gather(owner),
        amount=rng.integers(10, 51, len(attack)) * 100,
        card_id=pop.card_ids.gather(owner),
        terminal_id=pop.merchant_ids.gather(merchant[attack]),
        device_id=opaque_ids(rng, size, "dev-").gather(attack),
        ip=ip_addresses(rng, size, FRAUD_IP_OCTETS).gather(attack),
        approved=rng.random(len(attack)) < 0.1,
        **_tag("card_testing"),
    )


def account_takeover(
    rng: np.random.Generator, pop: Population, params: KoreanParams
) -> pl.DataFrame:
    size = _cases(rng, params.fraud.account_takeover, params, pop.size)
    victim = rng.choice(pop.size, size, replace=False)
    login_at = seoul_instants(
        params.start, _start_days(rng, size, params, 1), fraud_seconds(rng, size, 0.5)
    )
    who = {
        "customer_id": pop.customer_ids.gather(victim),
        "device_id": opaque_ids(rng, size, "dev-"),
        "ip": ip_addresses(rng, size, FRAUD_IP_OCTETS),
    }
    payee = {"payee_bank": bank_codes(rng, size), "payee_account": account_numbers(rng, size)}
    reset_at = login_at + seconds_between(rng, 30, 600, size) * MICROS
    added_at = reset_at + seconds_between(rng, 60, 900, size) * MICROS
    sent_at = added_at + seconds_between(rng, 30, 600, size) * MICROS
    # Some send straight to the account number without registering it first.
    registers = np.flatnonzero(rng.random(size) < 0.6)
    amount = np.clip(rng.lognormal(np.log(2e6), 0.7, size), 3e5, 2e7)
    tag = _tag("account_takeover")
    return concat_events(
        [
            event_frame("login", size, occurred_at=login_at, amount=0, **who, **tag),
            event_frame("password_reset", size, occurred_at=reset_at, amount=0, **who, **tag),
            event_frame(
                "payee_added",
                len(registers),
                occurred_at=added_at[registers],
                amount=0,
                **_gather({**who, **payee}, registers),
                **tag,
            ),
            event_frame(
                "transfer",
                size,
                occurred_at=sent_at,
                amount=round_won(amount, 10_000),
                **who,
                **payee,
                **tag,
            ),
        ]
    )


def mule_account(rng: np.random.Generator, pop: Population, params: KoreanParams) -> pl.DataFrame:
    size = _cases(rng, params.fraud.mule_account, params, pop.size if pop.size > 1 else 0)
    mule = rng.choice(pop.size, size, replace=False)
    inbound = np.minimum(rng.integers(8, 31, size), pop.size - 1)
    case = np.repeat(np.arange(size), inbound)
    # Distinct senders other than the mule: draw among the others, then skip over the mule.
    drawn = [rng.choice(pop.size - 1, count, replace=False) for count in inbound]
    sender = np.concatenate(drawn) if drawn else np.zeros(0, dtype=np.int64)
    sender = sender + (sender >= mule[case])
    # The money arrives over one to three days, at the senders' ordinary hours.
    spread = (rng.random(len(case)) * rng.integers(1, 4, size)[case]).astype(np.int64)
    day = _start_days(rng, size, params, 3)[case] + spread
    received_at = seoul_instants(params.start, day, ordinary_seconds(rng, len(case)))
    received = round_won(np.clip(rng.lognormal(np.log(1e6), 0.6, len(case)), 1e5, 1e7), 10_000)
    tag = _tag("mule_account")
    incoming = event_frame(
        "transfer",
        len(case),
        occurred_at=received_at,
        customer_id=pop.customer_ids.gather(sender),
        amount=received,
        device_id=pop.device_ids.gather(sender * DEVICES_PER_CUSTOMER),
        ip=pop.ips.gather(sender),
        payee_bank=params.home_bank,
        payee_account=pop.accounts.gather(mule[case]),
        **tag,
    )
    # Most arrivals are forwarded within minutes to one of the mule's two cash-out accounts.
    out = np.flatnonzero(rng.random(len(case)) < 0.85)
    cash_out = case[out] * 2 + rng.integers(0, 2, len(out))
    kept = rng.uniform(0.9, 1.0, len(out))
    forwarded = np.maximum(received[out] * kept // 10_000, 1).astype(np.int64) * 10_000
    outgoing = event_frame(
        "transfer",
        len(out),
        occurred_at=received_at[out] + seconds_between(rng, 180, 5400, len(out)) * MICROS,
        customer_id=pop.customer_ids.gather(mule[case[out]]),
        amount=forwarded,
        device_id=pop.device_ids.gather(mule[case[out]] * DEVICES_PER_CUSTOMER),
        ip=pop.ips.gather(mule[case[out]]),
        payee_bank=bank_codes(rng, size * 2).gather(cash_out),
        payee_account=account_numbers(rng, size * 2).gather(cash_out),
        **tag,
    )
    return concat_events([incoming, outgoing])


SCENARIOS: dict[str, Scenario] = {
    "voice_phishing": voice_phishing,
    "card_testing": card_testing,
    "account_takeover": account_takeover,
    "mule_account": mule_account,
}
