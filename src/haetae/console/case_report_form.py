"""The fraud report form, apart from the routes: what was typed (kept to show again with the
errors), turned into the API's :class:`FraudReportIn`, and each field's problem as a key of
the page's labels (:data:`~haetae.console.case_labels.REPORT_FORM_LABELS`).

Shared by the analysts' (call centre's) form and the customer's demo page. Amounts are in
won: the form takes KRW only. A card number typed where the card's id belongs is refused;
one pasted into the description is masked (the report still goes through)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from haetae.cases.process import KINDS
from haetae.cases.schemas import ACCOUNT, FraudReportIn
from haetae.logging import scrub_pans
from haetae.timezones import SEOUL

AMOUNT_MAX = 10**13  # as FraudReportIn
SUSPECT_MAX = 50
# A clock a little ahead on the reporter's phone is not an error.
FUTURE_SLACK = timedelta(minutes=10)
_SEPARATORS = re.compile(r"[\s:/|]+")

# Where the API's validation errors land on the form.
_FIELD_OF_LOC: dict[tuple[str | int, ...], str] = {
    ("kind",): "kind",
    ("reporter",): "reporter",
    ("reporter", "customer_id"): "reporter_customer_id",
    ("reporter", "phone"): "reporter_phone",
    ("victim", "customer_id"): "victim_customer_id",
    ("victim", "account_number"): "victim_account",
    ("victim", "card_id"): "victim_card_id",
    ("suspect_accounts",): "suspect_many",
    ("amount",): "amount",
    ("occurred_at",): "occurred_at",
    ("description",): "description",
    (): "reporter",  # the model's own check: someone to answer
}


@dataclass(frozen=True, slots=True)
class Problem:
    """A field's error: ``label`` is a key of the page's labels, ``params`` its values."""

    label: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReportForm:
    """The form as typed; every field a string, as browsers send them."""

    kind: str = ""
    reporter_customer_id: str = ""
    reporter_phone: str = ""
    victim_customer_id: str = ""
    victim_account: str = ""
    victim_card_id: str = ""
    suspect_accounts: str = ""
    amount: str = ""
    occurred_at: str = ""
    description: str = ""

    @classmethod
    def posted(cls, **values: str | None) -> ReportForm:
        names = {f.name for f in fields(cls)}
        return cls(**{k: (v or "").strip() for k, v in values.items() if k in names})

    def shown(self) -> ReportForm:
        """The form to show again: never with a card number in it."""
        card_id = "" if _looks_like_card_number(self.victim_card_id) else self.victim_card_id
        return replace(self, victim_card_id=card_id, description=scrub_pans(self.description))


def parse_amount(text: str) -> int | None:
    """Won as typed: ``5,000,000``, ``5000000원``, ``KRW 5,000,000``; None for nothing typed.
    Raises ValueError for anything else."""
    cleaned = re.sub(r"[\s,_]|원$|^KRW", "", text.strip(), flags=re.IGNORECASE)
    if not cleaned:
        return None
    if not cleaned.isdigit() or int(cleaned) > AMOUNT_MAX:
        raise ValueError(text)
    return int(cleaned)


def _suspect_lines(text: str) -> tuple[list[dict[str, Any]], Problem | None]:
    accounts: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p for p in _SEPARATORS.split(line.strip()) if p]
        try:
            if len(parts) not in (2, 3) or not re.fullmatch(r"[0-9]{3}", parts[0]):
                raise ValueError(line)
            if not re.fullmatch(ACCOUNT, parts[1]):
                raise ValueError(line)
            amount = parse_amount(parts[2]) if len(parts) == 3 else None
        except ValueError:
            return [], Problem("error_suspect_accounts", {"line": number})
        accounts.append({"bank_code": parts[0], "account_number": parts[1], "amount": amount})
    if len(accounts) > SUSPECT_MAX:
        return [], Problem("error_suspect_many")
    return accounts, None


def _occurred_at(text: str, now: datetime) -> datetime | None:
    """A ``datetime-local`` value, in Seoul time. Raises ValueError when it is not one."""
    if not text:
        return None
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=SEOUL)
    return value


def _looks_like_card_number(text: str) -> bool:
    return scrub_pans(text) != text


def parse_report(
    form: ReportForm, now: datetime
) -> tuple[FraudReportIn | None, dict[str, Problem]]:
    """The report to file, or the problems to show (by form field)."""
    problems: dict[str, Problem] = {}
    if form.kind not in KINDS:
        problems["kind"] = Problem("error_kind")
    if not (form.reporter_customer_id or form.reporter_phone):
        problems["reporter"] = Problem("error_reporter")
    accounts, suspect_problem = _suspect_lines(form.suspect_accounts)
    if suspect_problem is not None:
        problems["suspect_accounts"] = suspect_problem
    amount: int | None = None
    try:
        amount = parse_amount(form.amount)
    except ValueError:
        problems["amount"] = Problem("error_amount")
    occurred: datetime | None = None
    try:
        occurred = _occurred_at(form.occurred_at, now)
    except ValueError:
        problems["occurred_at"] = Problem("error_occurred_at")
    if occurred is not None and occurred > now + FUTURE_SLACK:
        problems["occurred_at"] = Problem("error_occurred_future")
    if _looks_like_card_number(form.victim_card_id):
        problems["victim_card_id"] = Problem("error_card_number")
    if problems:
        return None, problems
    body: dict[str, Any] = {
        "kind": form.kind,
        "reporter": {
            "customer_id": form.reporter_customer_id or None,
            "phone": form.reporter_phone.replace(" ", "") or None,
        },
        "victim": {
            "customer_id": form.victim_customer_id or None,
            "account_number": form.victim_account.replace(" ", "") or None,
            "card_id": form.victim_card_id or None,
        },
        "suspect_accounts": accounts,
        "amount": amount or 0,
        "currency": "KRW",
        "occurred_at": occurred,
        "description": scrub_pans(form.description.replace("\r\n", "\n")),
    }
    try:
        return FraudReportIn.model_validate(body), {}
    except ValidationError as error:
        return None, _problems_of(error)


def _problems_of(error: ValidationError) -> dict[str, Problem]:
    problems: dict[str, Problem] = {}
    for detail in error.errors():
        loc = tuple(detail.get("loc", ()))
        name = _FIELD_OF_LOC.get(loc)
        if name is None and loc[:1] == ("suspect_accounts",) and len(loc) > 1:
            problems.setdefault(
                "suspect_accounts", Problem("error_suspect_accounts", {"line": int(loc[1]) + 1})
            )
            continue
        if name == "suspect_many":
            problems.setdefault("suspect_accounts", Problem("error_suspect_many"))
            continue
        name = name or "summary"
        problems.setdefault(name, Problem(f"error_{name}"))
    return problems
