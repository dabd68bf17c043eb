"""The signed message format institutions exchange, and its acknowledgement.

A message is a JSON object::

    {"v": 1, "id": "<message id>", "sender": "090", "recipient": "088",
     "kind": "fraud_report", "signed_at": "2026-11-23T13:00:00.000Z", "payload": {...},
     "sig": "<base64 Ed25519 signature>"}

``sig`` signs the canonical form of every other field: the JSON with sorted keys, no
whitespace (``,`` and ``:`` separators), non-ASCII characters as UTF-8, encoded as UTF-8.
Both sides compute it from the parsed object, so how the JSON was spaced on the wire does
not matter. Values are strings, integers, booleans, null, lists and objects: no floats,
whose text form differs between JSON libraries.

The acknowledgement a receiver answers with is signed the same way::

    {"v": 1, "ack": "<message id>", "sender": "088", "recipient": "090",
     "signed_at": "...", "sig": "..."}

Everything here is pure: no I/O, the time is given. Verification raises
:class:`EnvelopeError`, which names the field at fault.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

VERSION = 1
Kind = Literal["fraud_report"]
KINDS: tuple[str, ...] = ("fraud_report",)
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
INSTITUTION = re.compile(r"^[0-9]{3}$")

# Codes from the error catalog, by what went wrong.
SENDER_UNKNOWN = "consortium_sender_unknown"
SIGNATURE_INVALID = "consortium_signature_invalid"
WRONG_RECIPIENT = "consortium_wrong_recipient"
EXPIRED = "consortium_message_expired"
INVALID = "consortium_message_invalid"


class EnvelopeError(Exception):
    """A message or acknowledgement refused: ``code`` (catalog), ``field`` at fault."""

    def __init__(self, code: str, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.code = code
        self.field = field
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Message:
    """A message that passed every check."""

    id: str
    sender: str
    recipient: str
    kind: Kind
    signed_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ack:
    message_id: str
    sender: str
    recipient: str
    signed_at: datetime


def canonical(document: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def format_time(at: datetime) -> str:
    """ISO 8601 in UTC to the millisecond, ``Z`` suffixed."""
    if at.tzinfo is None:
        raise ValueError("a naive datetime cannot be signed")
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_millisecond(at: datetime) -> datetime:
    """The time as :func:`format_time` writes it (what reads back from a message)."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def encode_key(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes_raw()).decode()


def decode_public_key(text: str) -> Ed25519PublicKey:
    """A base64 raw 32-byte Ed25519 public key; ValueError if it is not one."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except binascii.Error as error:
        raise ValueError("not base64") from error
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def decode_private_key(text: str) -> Ed25519PrivateKey:
    """A base64 raw 32-byte Ed25519 seed; ValueError if it is not one."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except binascii.Error as error:
        raise ValueError("not base64") from error
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 private key (seed) is 32 bytes, not {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def sign(document: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """``document`` with its ``sig`` (any ``sig`` it had is replaced)."""
    unsigned = {k: v for k, v in document.items() if k != "sig"}
    signature = key.sign(canonical(unsigned))
    return {**unsigned, "sig": base64.b64encode(signature).decode()}


def seal(
    *,
    message_id: str,
    sender: str,
    recipient: str,
    kind: Kind,
    payload: Mapping[str, Any],
    signed_at: datetime,
    key: Ed25519PrivateKey,
) -> dict[str, Any]:
    """A signed message."""
    return sign(
        {
            "v": VERSION,
            "id": message_id,
            "sender": sender,
            "recipient": recipient,
            "kind": kind,
            "signed_at": format_time(signed_at),
            "payload": dict(payload),
        },
        key,
    )


def reseal(
    envelope: Mapping[str, Any], signed_at: datetime, key: Ed25519PrivateKey
) -> dict[str, Any]:
    """The same message (same id, same payload) signed again now: a message retried after
    the receiver's time window would otherwise be refused as expired for ever. The receiver
    recognises the repeat by its id."""
    return sign({**envelope, "signed_at": format_time(signed_at)}, key)


def seal_ack(
    *, message_id: str, sender: str, recipient: str, signed_at: datetime, key: Ed25519PrivateKey
) -> dict[str, Any]:
    """A signed acknowledgement. Ed25519 signatures are deterministic: the same fields give
    the same bytes, so a repeated message can be answered with exactly the first answer."""
    return sign(
        {
            "v": VERSION,
            "ack": message_id,
            "sender": sender,
            "recipient": recipient,
            "signed_at": format_time(signed_at),
        },
        key,
    )


def verify_message(
    document: Mapping[str, Any],
    *,
    keys: Mapping[str, Ed25519PublicKey],
    us: str,
    now: datetime,
    window: timedelta,
) -> Message:
    """Check a received message: a sender we know (``keys``: institution code → public
    key), its signature, addressed to ``us``, signed within ``window`` of ``now`` (either
    side: clocks drift), and well formed. The payload is not checked here (see
    ``haetae.consortium.schemas``). Whether it was seen before is the receiver's business:
    a replay inside the window is caught by its stored (sender, id)."""
    sender = _text(document, "sender")
    key = keys.get(sender)
    if key is None:
        raise EnvelopeError(SENDER_UNKNOWN, "sender", f"no public key configured for {sender!r}")
    _check_signature(document, key)
    _check_version(document)
    recipient = _text(document, "recipient")
    if recipient != us:
        raise EnvelopeError(WRONG_RECIPIENT, "recipient", f"this institution is {us}")
    signed_at = _time(document, "signed_at")
    if abs(now - signed_at) > window:
        raise EnvelopeError(
            EXPIRED,
            "signed_at",
            f"signed at {format_time(signed_at)}, more than "
            f"{window.total_seconds():g} s from now ({format_time(now)})",
        )
    message_id = _text(document, "id")
    if not MESSAGE_ID.match(message_id):
        raise EnvelopeError(INVALID, "id", "1 to 40 letters, digits, '_' or '-'")
    kind: Kind
    if _text(document, "kind") == "fraud_report":
        kind = "fraud_report"
    else:
        raise EnvelopeError(INVALID, "kind", f"one of {', '.join(KINDS)}")
    payload = document.get("payload")
    if not isinstance(payload, dict):
        raise EnvelopeError(INVALID, "payload", "must be an object")
    return Message(message_id, sender, recipient, kind, signed_at, payload)


def verify_ack(
    document: Mapping[str, Any], *, key: Ed25519PublicKey, peer: str, us: str, message_id: str
) -> Ack:
    """Check an acknowledgement of ``message_id`` from ``peer`` (whose key is ``key``).

    Its age is not checked: an acknowledgement only says the peer accepted that message,
    which stays true, and a message repeated long after (its first answer lost) is answered
    with the acknowledgement signed when it was first accepted."""
    if not isinstance(document, Mapping):
        raise EnvelopeError(INVALID, "body", "an acknowledgement is a JSON object")
    _check_signature(document, key)
    _check_version(document)
    if _text(document, "sender") != peer:
        raise EnvelopeError(INVALID, "sender", f"expected {peer}")
    if _text(document, "recipient") != us:
        raise EnvelopeError(WRONG_RECIPIENT, "recipient", f"expected {us}")
    if _text(document, "ack") != message_id:
        raise EnvelopeError(INVALID, "ack", f"expected {message_id}")
    return Ack(message_id, peer, us, _time(document, "signed_at"))


def _check_signature(document: Mapping[str, Any], key: Ed25519PublicKey) -> None:
    text = _text(document, "sig")
    try:
        signature = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise EnvelopeError(SIGNATURE_INVALID, "sig", "not base64") from None
    unsigned = {k: v for k, v in document.items() if k != "sig"}
    try:
        key.verify(signature, canonical(unsigned))
    except (InvalidSignature, ValueError):
        raise EnvelopeError(
            SIGNATURE_INVALID, "sig", "does not match the sender's public key"
        ) from None


def _check_version(document: Mapping[str, Any]) -> None:
    version = document.get("v")
    if version != VERSION or isinstance(version, bool):
        raise EnvelopeError(INVALID, "v", f"version {VERSION} is the one understood")


def _text(document: Mapping[str, Any], field: str) -> str:
    value = document.get(field)
    if not isinstance(value, str) or not value:
        raise EnvelopeError(INVALID, field, "missing, or not a string")
    return value


def _time(document: Mapping[str, Any], field: str) -> datetime:
    text = _text(document, field)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise EnvelopeError(INVALID, field, "not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise EnvelopeError(INVALID, field, "needs a time zone (UTC, 'Z')")
    return at.astimezone(UTC)
