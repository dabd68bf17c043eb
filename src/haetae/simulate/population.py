"""The simulated bank's customers: their devices, IP, own account, card, usual payees and
habits, plus the key-in merchants they pay. One row per customer, drawn once per run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from haetae.simulate.frames import (
    account_numbers,
    ip_addresses,
    opaque_ids,
    prefixed,
    width_for,
)

MAX_PAYEES = 6
DEVICES_PER_CUSTOMER = 2  # slot 1 is used only by customers who own a second device

# Korean bank codes (KFTC): KB, Shinhan, Woori, Hana, NongHyup, IBK, K bank, kakaobank,
# Toss Bank, SC First, post office, Saemaul, iM Bank, Busan.
BANK_CODES: tuple[str, ...] = (
    *("004", "088", "020", "081", "011", "003", "089"),
    *("090", "092", "023", "071", "045", "031", "032"),
)
BANK_WEIGHTS = np.array([14, 13, 11, 10, 10, 8, 4, 9, 5, 3, 4, 3, 3, 3], dtype=float)
# First octets of address blocks allocated to Korean ISPs and mobile carriers.
KOREAN_IP_OCTETS = (1, 14, 27, 39, 49, 58, 59, 61, 106, 110, 112, 115, 118, 121, 175, 211, 218)


@dataclass(frozen=True)
class Population:
    size: int
    customer_ids: pl.Series
    accounts: pl.Series  # each customer's own account at the simulated bank
    card_ids: pl.Series
    ips: pl.Series
    device_ids: pl.Series  # DEVICES_PER_CUSTOMER slots per customer, flat
    second_device_from: np.ndarray  # first day the second device is used; past the run = none
    payee_banks: pl.Series  # MAX_PAYEES slots per customer, flat
    payee_accounts: pl.Series
    payee_count: np.ndarray
    payee_amount: np.ndarray  # typical transfer to each payee slot, in won
    login_rate: np.ndarray  # logins a day
    transfers_per_login: np.ndarray
    payment_rate: np.ndarray  # key-in payments a day
    payment_amount: np.ndarray  # typical key-in payment, in won
    merchant_ids: pl.Series
    merchant_weights: np.ndarray  # a few merchants take most payments


def draw_population(
    rng: np.random.Generator, customers: int, merchants: int, days: int
) -> Population:
    width = width_for(customers)
    index = np.arange(customers)
    payee_slots = customers * MAX_PAYEES
    # A quarter of customers switch to (or add) a second phone during the run, half own one
    # already; the rest never do.
    owns = rng.random(customers)
    second_from = np.where(owns < 0.5, -1, days)
    switches = owns > 0.75
    second_from[switches] = rng.integers(0, max(days, 1), switches.sum())
    popularity = 1.0 / np.arange(1, merchants + 1) ** 1.1
    return Population(
        size=customers,
        customer_ids=prefixed("kr-customer-", index, width),
        accounts=account_numbers(rng, customers),
        card_ids=prefixed("kr-card-", index, width),
        ips=ip_addresses(rng, customers, KOREAN_IP_OCTETS),
        device_ids=opaque_ids(rng, customers * DEVICES_PER_CUSTOMER, "dev-"),
        second_device_from=second_from,
        payee_banks=bank_codes(rng, payee_slots),
        payee_accounts=account_numbers(rng, payee_slots),
        payee_count=rng.integers(2, MAX_PAYEES + 1, customers),
        payee_amount=np.clip(rng.lognormal(np.log(200_000), 1.0, payee_slots), 10_000, 5e6),
        login_rate=rng.uniform(0.7, 2.5, customers),
        transfers_per_login=rng.uniform(0.03, 0.35, customers),
        payment_rate=rng.uniform(0.0, 0.8, customers),
        payment_amount=rng.lognormal(np.log(25_000), 0.6, customers),
        merchant_ids=prefixed("kr-merchant-", np.arange(merchants), width_for(merchants, 4)),
        merchant_weights=popularity / popularity.sum(),
    )


def bank_codes(rng: np.random.Generator, size: int) -> pl.Series:
    codes = pl.Series(BANK_CODES, dtype=pl.String)
    return codes.gather(rng.choice(len(BANK_CODES), size, p=BANK_WEIGHTS / BANK_WEIGHTS.sum()))
