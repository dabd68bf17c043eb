"""The simulated issuer's test cards.

These belong to the issuer: they live in the simulator's memory only, never in the platform's
database or data directory. Every number is Luhn-valid, so the gateway's own checks pass and
the issuer's answer is what the test exercises.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Behaviour(Enum):
    APPROVE = "approve"  # approve within balance and single-payment limit
    DECLINE = "decline"  # always answer ``response_code`` (and ``additional``)
    STEP_UP = "step_up"  # "1A" unless field 48 carries AU=Y.., then approve
    NO_ANSWER = "no_answer"  # approve and hold, but never send the reply
    DOMESTIC = "domestic"  # Korean key-in: birth date / business number + 2 password digits


@dataclass(frozen=True, slots=True)
class TestCard:
    __test__ = False  # not a pytest test class, despite the name

    number: str
    brand: str
    behaviour: Behaviour
    description: str
    balance: int = 0
    single_limit: int = 0
    response_code: str = "00"  # for DECLINE
    additional: str | None = None  # field 44 for DECLINE
    holder_id: str | None = None  # DOMESTIC: birth date YYMMDD or business number
    password_2digits: str | None = None  # DOMESTIC


BALANCE = 100_000_000  # minor units
SINGLE_LIMIT = 50_000_000


_APPROVES = (
    "approves (any CVC, any expiry not in the past); "
    "61 above 50,000,000 per payment, 51 once the 100,000,000 balance is used up"
)


def _approve(number: str, brand: str) -> TestCard:
    return TestCard(number, brand, Behaviour.APPROVE, _APPROVES, BALANCE, SINGLE_LIMIT)


def _decline(
    number: str, code: str, description: str, additional: str | None = None, balance: int = 0
) -> TestCard:
    return TestCard(
        number,
        "Visa",
        Behaviour.DECLINE,
        description,
        balance=balance,
        response_code=code,
        additional=additional,
    )


NO_ANSWER_CARD = "4000000000000408"  # 408, as in HTTP "Request Timeout"
STEP_UP_CARD = "4000000000003220"
DOMESTIC_PERSONAL_CARD = "9410123456789010"
DOMESTIC_CORPORATE_CARD = "9420123456789018"

TEST_CARDS: tuple[TestCard, ...] = (
    _approve("4242424242424242", "Visa"),
    _approve("5555555555554444", "Mastercard"),
    _approve("378282246310005", "American Express"),
    _approve("3530111333300000", "JCB"),
    _approve("6200000000000005", "UnionPay"),
    _decline("4000000000009995", "51", "51 insufficient funds (balance 0)"),
    _decline("4000000000006975", "61", "61 exceeds withdrawal limit", balance=BALANCE),
    _decline("4000000000000069", "54", "54 expired card (at the issuer)", balance=BALANCE),
    _decline("4000000000000127", "N7", "N7 + field 44 'C': wrong CVC", "C", BALANCE),
    _decline("4000000000009987", "41", "41 lost card", balance=BALANCE),
    _decline("4000000000000119", "91", "91 issuer unavailable", balance=BALANCE),
    _decline("4000000000000002", "05", "05 do not honour (generic decline)", balance=BALANCE),
    TestCard(
        STEP_UP_CARD,
        "Visa",
        Behaviour.STEP_UP,
        "1A additional authentication required; approves when field 48 has AU=Y..",
        BALANCE,
        SINGLE_LIMIT,
    ),
    TestCard(
        NO_ANSWER_CARD,
        "Visa",
        Behaviour.NO_ANSWER,
        "never answers (approves and holds the amount, the reply is lost): "
        "the gateway must time out and reverse",
        BALANCE,
        SINGLE_LIMIT,
    ),
    TestCard(
        DOMESTIC_PERSONAL_CARD,
        "Domestic (personal)",
        Behaviour.DOMESTIC,
        "approves with birth date 900101 and password digits 12; "
        "wrong birth date -> N7 + 'B', wrong password -> 55",
        BALANCE,
        SINGLE_LIMIT,
        holder_id="900101",
        password_2digits="12",  # noqa: S106 - a published test card, not a secret
    ),
    TestCard(
        DOMESTIC_CORPORATE_CARD,
        "Domestic (corporate)",
        Behaviour.DOMESTIC,
        "approves with business number 1234567890 and password digits 34; "
        "wrong business number -> N7 + 'B', wrong password -> 55",
        BALANCE,
        SINGLE_LIMIT,
        holder_id="1234567890",
        password_2digits="34",  # noqa: S106 - a published test card, not a secret
    ),
)

CARDS_BY_NUMBER: dict[str, TestCard] = {card.number: card for card in TEST_CARDS}


def describe_test_cards() -> list[dict[str, str]]:
    """The table for the README and ``haetae issuer-sim``; these are public test numbers."""
    rows = [
        {"number": card.number, "brand": card.brand, "behaviour": card.description}
        for card in TEST_CARDS
    ]
    rows.append({"number": "(any other)", "brand": "-", "behaviour": "14 invalid card number"})
    return rows
