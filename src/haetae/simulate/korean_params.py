"""Parameters of the Korean-bank simulation (amounts in won)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class FraudRates:
    """Expected new cases a day per 10,000 customers, for each scenario."""

    voice_phishing: float = 0.6
    card_testing: float = 0.3  # attacks, each testing many customers' cards
    account_takeover: float = 0.4
    mule_account: float = 0.2  # mules, each receiving many victims' transfers


@dataclass(frozen=True)
class KoreanParams:
    customers: int = 5_000
    days: int = 90
    # The handbook's start, so that a combined history shares one calendar.
    start: date = date(2018, 4, 1)
    merchants: int = 400
    home_bank: str = "090"  # the simulated bank's own KFTC code
    payment_decline_rate: float = 0.03  # genuine key-in payments the issuer declines
    new_payee_per_login: float = 0.01
    routine_reissue_per_day: float = 1 / 365  # certificates renewed on a known device
    password_reset_per_day: float = 1 / 400
    roaming_ip_share: float = 0.08  # genuine sessions from an unusual network
    fraud: FraudRates = field(default_factory=FraudRates)
