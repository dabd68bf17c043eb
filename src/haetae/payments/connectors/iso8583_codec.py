"""ISO 8583 messages for the issuer link: pure mapping between the port's types and bytes.

No I/O here (apart from reading one frame off a stream): the connector and the issuer
simulator both build on these helpers, so the two sides can never drift apart.
The bitmap and field encoding is pyiso8583's; this module only decides what goes in which field.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import string
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import iso8583
from iso8583.specs import default_ascii

from haetae.currencies import CURRENCIES
from haetae.payments.connectors.base import AuthorizationRequest, IssuerReply, ReversalRequest
from haetae.timezones import SEOUL

# Our own copy: pyiso8583's spec dicts are module-level and shared with any other user.
SPEC: dict[str, dict[str, Any]] = copy.deepcopy(default_ascii)
SPEC["48"]["desc"] = "Additional Data - Private (KEY=VALUE; pairs)"
SPEC["90"]["desc"] = "Original Data Elements (MTI, STAN, field 7, 22 zeros)"

MTI_AUTH_REQUEST = "0100"
MTI_AUTH_REPLY = "0110"
MTI_REVERSAL_REQUEST = "0400"
MTI_REVERSAL_REPLY = "0410"

PROCESSING_CODE_PURCHASE = "000000"
POS_ENTRY_MANUAL = "010"  # key entry: the card number was typed, not read
POS_CONDITION_ECOMMERCE = "59"  # card not present
TERMINAL_ID = "HAETAE01"
MERCHANT_ID_LENGTH = 15
MAX_AMOUNT = 999_999_999_999  # field 4 holds 12 digits
MAX_FRAME = 0xFFFF  # the 2-byte length prefix

CURRENCY_NUMERIC: dict[str, str] = {c.alpha: c.numeric for c in CURRENCIES.values()}

ReversalReason = Literal["timeout", "cancel"]
_REASON_CODES: dict[str, str] = {"timeout": "T", "cancel": "C"}

_MERCHANT_CHARS = frozenset(string.ascii_letters + string.digits + "-_.")


class CodecError(ValueError):
    """A message could not be built or parsed. Never carries card data in its text."""


# --- framing -------------------------------------------------------------------------------


def frame(message: bytes | bytearray) -> bytes:
    """Prefix ``message`` with its length as two big-endian bytes."""
    if len(message) > MAX_FRAME:
        raise CodecError(f"message too long for a 2-byte length prefix: {len(message)}")
    return len(message).to_bytes(2, "big") + bytes(message)


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """Read one length-prefixed message. Raises asyncio.IncompleteReadError on EOF."""
    header = await reader.readexactly(2)
    return await reader.readexactly(int.from_bytes(header, "big"))


# --- field helpers -------------------------------------------------------------------------


def format_private_data(pairs: Mapping[str, str]) -> str:
    """Field 48 as ``KEY=VALUE;`` pairs, in the given order."""
    parts: list[str] = []
    for key, value in pairs.items():
        if any(c in value for c in "=;") or any(c in key for c in "=;"):
            raise CodecError(f"field 48 value for {key!r} contains '=' or ';'")
        parts.append(f"{key}={value};")
    return "".join(parts)


def parse_private_data(text: str) -> dict[str, str]:
    """Inverse of :func:`format_private_data`; tolerates a missing final ';'."""
    pairs: dict[str, str] = {}
    for part in text.split(";"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise CodecError("field 48 pair without '='")
        pairs[key] = value
    return pairs


def merchant_field(merchant_id: str) -> str:
    """Field 42 (exactly 15 characters), deterministic for a given merchant id.

    Short plain ids are space-padded. Longer or unusual ids keep a readable prefix plus a
    hash suffix, so two merchants sharing their first 15 characters stay distinct.
    """
    if len(merchant_id) <= MERCHANT_ID_LENGTH and set(merchant_id) <= _MERCHANT_CHARS:
        return merchant_id.ljust(MERCHANT_ID_LENGTH)
    digest = hashlib.sha256(merchant_id.encode()).hexdigest()[:8].upper()
    prefix = "".join(c for c in merchant_id if c in _MERCHANT_CHARS)[:6]
    return f"{prefix}~{digest}".ljust(MERCHANT_ID_LENGTH)


def transmission_datetime(at: datetime) -> str:
    """Field 7: MMDDhhmmss in UTC."""
    return _require_aware(at).astimezone(UTC).strftime("%m%d%H%M%S")


def format_stan(stan: int | str) -> str:
    """Field 11: six digits."""
    value = int(stan)
    if not 0 <= value <= 999_999:
        raise CodecError("STAN must be 0..999999")
    return f"{value:06d}"


def _require_aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise CodecError("datetimes must be timezone-aware")
    return at


def _currency(alpha: str) -> str:
    try:
        return CURRENCY_NUMERIC[alpha.upper()]
    except KeyError:
        raise CodecError(f"unsupported currency {alpha!r}") from None


def _amount(amount: int) -> str:
    if not 0 <= amount <= MAX_AMOUNT:
        raise CodecError("amount out of range for field 4")
    return f"{amount:012d}"


def _rrn(rrn: str) -> str:
    if len(rrn) != 12 or not rrn.isascii() or not rrn.isprintable():
        raise CodecError("RRN must be 12 printable ASCII characters")
    return rrn


def _pan(pan: str) -> str:
    if not (pan.isascii() and pan.isdigit() and 12 <= len(pan) <= 19):
        raise CodecError("PAN must be 12 to 19 digits")
    return pan


def _encode(fields: dict[str, str]) -> bytes:
    try:
        raw, _ = iso8583.encode(dict(fields), SPEC)  # encode() adds bitmaps to its argument
    except iso8583.EncodeError as exc:
        # pyiso8583 messages may quote field values; report the field only.
        raise CodecError(f"cannot encode field {exc.field}") from None
    return bytes(raw)


def decode_message(raw: bytes | bytearray) -> dict[str, str]:
    """Any message to ``{field: value}`` (``"t"`` is the MTI, bitmaps included)."""
    try:
        fields, _ = iso8583.decode(bytes(raw), SPEC)
    except iso8583.DecodeError as exc:
        raise CodecError(f"cannot decode field {exc.field}") from None
    return fields


# --- acquirer side: what the gateway sends and reads -----------------------------------------


def build_authorization(request: AuthorizationRequest, stan: int | str) -> bytes:
    """The 0100 for ``request`` with trace number ``stan``."""
    card = request.card
    at = _require_aware(request.transmitted_at)
    local = at.astimezone(SEOUL)
    if not 1 <= card.exp_month <= 12:
        raise CodecError("expiry month out of range")
    private: dict[str, str] = {}
    if card.cvc:
        private["CV"] = card.cvc
    if card.birth_or_business_no:
        private["BD"] = card.birth_or_business_no
    if card.password_2digits:
        private["PW"] = card.password_2digits
    if request.authentication is not None:
        private["AU"] = request.authentication.status + request.authentication.eci
    fields = {
        "t": MTI_AUTH_REQUEST,
        "2": _pan(card.pan),
        "3": PROCESSING_CODE_PURCHASE,
        "4": _amount(request.amount),
        "7": transmission_datetime(at),
        "11": format_stan(stan),
        "12": local.strftime("%H%M%S"),
        "13": local.strftime("%m%d"),
        "14": f"{card.exp_year % 100:02d}{card.exp_month:02d}",
        "22": POS_ENTRY_MANUAL,
        "25": POS_CONDITION_ECOMMERCE,
        "37": _rrn(request.rrn),
        "41": TERMINAL_ID,
        "42": merchant_field(request.merchant_id),
        "49": _currency(request.currency),
    }
    if private:
        fields["48"] = format_private_data(private)
    return _encode(fields)


def build_reversal(
    original: AuthorizationRequest | ReversalRequest,
    *,
    stan: int | str,
    reason: ReversalReason,
    transmitted_at: datetime,
    original_stan: int | str | None = None,
) -> bytes:
    """The 0400 undoing ``original``; the issuer matches it by RRN (field 37).

    From a :class:`ReversalRequest` there is no card number, so field 2 is left out. The
    original STAN (field 90) is ``original_stan``, else the ReversalRequest's, else "000000"
    when nobody knows it any more (e.g. the authorization never came back).
    """
    if isinstance(original, AuthorizationRequest):
        pan: str | None = original.card.pan
        original_at = original.transmitted_at
    else:
        pan = None
        original_at = original.original_transmitted_at
        if original_stan is None:
            original_stan = original.stan
    original_data = (
        MTI_AUTH_REQUEST
        + format_stan(original_stan if original_stan is not None else 0)
        + transmission_datetime(original_at)
        + "0" * 22
    )
    fields = {
        "t": MTI_REVERSAL_REQUEST,
        "3": PROCESSING_CODE_PURCHASE,
        "4": _amount(original.amount),
        "7": transmission_datetime(transmitted_at),
        "11": format_stan(stan),
        "37": _rrn(original.rrn),
        "41": TERMINAL_ID,
        "42": merchant_field(original.merchant_id),
        # No standard slot for the reason in an 0400: carried as private data.
        "48": format_private_data({"RS": _REASON_CODES[reason]}),
        "49": _currency(original.currency),
        "90": original_data,
    }
    if pan is not None:
        fields["2"] = _pan(pan)
    return _encode(fields)


def parse_authorization_reply(raw: bytes | bytearray) -> IssuerReply:
    return _parse_reply(raw, MTI_AUTH_REPLY)


def parse_reversal_reply(raw: bytes | bytearray) -> IssuerReply:
    return _parse_reply(raw, MTI_REVERSAL_REPLY)


def _parse_reply(raw: bytes | bytearray, expected_mti: str) -> IssuerReply:
    fields = decode_message(raw)
    if fields.get("t") != expected_mti:
        raise CodecError(f"expected MTI {expected_mti}, got {fields.get('t')!r}")
    missing = [f for f in ("11", "37", "39") if f not in fields]
    if missing:
        raise CodecError(f"reply lacks field(s) {', '.join(missing)}")
    return IssuerReply(
        response_code=fields["39"],
        stan=fields["11"],
        rrn=fields["37"],
        approval_code=fields.get("38") or None,
        additional=fields.get("44") or None,
    )


# --- issuer side: what the simulator reads and answers ---------------------------------------


def reply_mti(request_mti: str) -> str:
    """0100 -> 0110, 0400 -> 0410: the response class digit goes up by one."""
    if len(request_mti) != 4 or not request_mti.isdigit() or request_mti[2] != "0":
        raise CodecError("not a request MTI")
    return request_mti[:2] + "1" + request_mti[3]


# Fields a reply echoes from its request. The PAN is left out on purpose: the acquirer
# matches by STAN and RRN, and there is no reason to send card data back over the wire.
_ECHOED = ("3", "4", "7", "11", "37", "41", "42", "49")


def build_reply(
    request: Mapping[str, str],
    response_code: str,
    *,
    approval_code: str | None = None,
    additional: str | None = None,
) -> bytes:
    """The 0110/0410 answering a decoded request."""
    fields = {"t": reply_mti(request.get("t", ""))}
    fields.update({f: request[f] for f in _ECHOED if f in request})
    fields["39"] = response_code
    if approval_code:
        fields["38"] = approval_code
    if additional:
        fields["44"] = additional
    return _encode(fields)
