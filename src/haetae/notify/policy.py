"""Who gets what, where and when: pure decisions, no I/O.

- ``security`` notices (certificates, fraud, step-up codes) are always sent; a customer may
  switch channels off but never the in-app inbox, so no security notice is ever lost.
- ``transactional`` notices follow the customer's channel choices, at any hour.
- ``marketing`` needs consent, and between 21:00 and 08:00 Asia/Seoul separate night-time
  consent (Network Act §50③; e-mail is exempt); without it the notice waits until 08:00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal

from haetae.notify.channels.base import ChannelName
from haetae.timezones import SEOUL

Category = Literal["security", "transactional", "marketing"]
CATEGORIES: tuple[Category, ...] = ("security", "transactional", "marketing")
CHANNELS: tuple[ChannelName, ...] = ("inbox", "push", "sms", "email")
QUIET_START, QUIET_END = time(21, 0), time(8, 0)


@dataclass(frozen=True, slots=True)
class Decision:
    """``send_at`` None: suppressed, with ``reason``."""

    send_at: datetime | None
    reason: str | None = None


def in_quiet_hours(at: datetime) -> bool:
    local = at.astimezone(SEOUL).time()
    return local >= QUIET_START or local < QUIET_END


def quiet_hours_end(at: datetime) -> datetime:
    local = at.astimezone(SEOUL)
    end = datetime.combine(local.date(), QUIET_END, SEOUL)
    if local.time() >= QUIET_START:
        end += timedelta(days=1)
    return end


def decide(
    *,
    category: Category,
    channel: ChannelName,
    enabled: bool,
    has_address: bool,
    marketing_consent: bool,
    night_consent: bool,
    now: datetime,
) -> Decision:
    if not has_address:
        return Decision(None, "no_address")
    if category == "security" and channel == "inbox":
        return Decision(now)  # the one channel a security notice always takes
    if not enabled:
        return Decision(None, "preference")
    if category != "marketing":
        return Decision(now)
    if not marketing_consent:
        return Decision(None, "no_marketing_consent")
    if channel != "email" and in_quiet_hours(now) and not night_consent:
        return Decision(quiet_hours_end(now), None)
    return Decision(now)
