"""What a message of each kind carries (the ``payload`` of the envelope)."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
)

# As a fraud report takes it (haetae.cases.schemas): digits, dashes inside.
ACCOUNT = r"^[0-9][0-9-]{4,18}[0-9]$"
# A device id or phone number as a risk list holds it (at most 200 characters).
ListValue = Annotated[
    StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]


class SharedAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bank_code: StrictStr = Field(pattern=r"^[0-9]{3}$")
    account_number: StrictStr = Field(pattern=ACCOUNT)


class FraudReportPayload(BaseModel):
    """``fraud_report``: the accounts, devices and phone numbers a case at the sender found
    used for fraud. Fields a later sender adds are kept with the stored message and
    otherwise ignored."""

    model_config = ConfigDict(extra="ignore")

    case_id: StrictStr = Field(min_length=1, max_length=40)  # the sender's case
    kind: StrictStr = Field(min_length=1, max_length=30)  # voice_phishing, smishing, ...
    accounts: list[SharedAccount] = Field(default_factory=list, max_length=50)
    devices: list[ListValue] = Field(default_factory=list, max_length=50)
    phones: list[ListValue] = Field(default_factory=list, max_length=50)
    amount: StrictInt = Field(default=0, ge=0, le=10**13)  # minor units
    currency: StrictStr = Field(default="KRW", pattern=r"^[A-Z]{3}$")
    occurred_at: AwareDatetime | None = None

    def list_entries(self) -> dict[str, list[str]]:
        """The values each risk list gets: account numbers as written and digits only (a
        rule may meet either form), device ids, phone numbers."""
        accounts = {a.account_number for a in self.accounts}
        accounts |= {number.replace("-", "") for number in accounts}
        return {
            MULE_ACCOUNTS: sorted(accounts),
            MULE_DEVICES: sorted(set(self.devices)),
            REPORTED_PHONES: sorted(set(self.phones)),
        }


# The risk lists the fraud rules read (the same names the case actions use).
MULE_ACCOUNTS = "mule_accounts"
MULE_DEVICES = "mule_devices"
REPORTED_PHONES = "reported_phones"
