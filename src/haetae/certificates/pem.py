"""Reading an X.509 certificate in PEM with ``cryptography``: what the bank needs to know."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes

MAX_PEM_BYTES = 64 * 1024  # a certificate chain is a few KB; refuse anything absurd


class PemError(ValueError):
    """The text is not one readable X.509 certificate in PEM."""


@dataclass(frozen=True, slots=True)
class ParsedCertificate:
    serial: str  # upper-case hex, as certificate viewers show it
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str  # lower-case hex of the DER's SHA-256


def parse_pem(text: str) -> ParsedCertificate:
    """The first certificate in ``text`` (a chain may follow; the leaf comes first)."""
    data = text.encode("ascii", errors="replace")
    if len(data) > MAX_PEM_BYTES:
        raise PemError(f"larger than {MAX_PEM_BYTES} bytes")
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise PemError("no '-----BEGIN CERTIFICATE-----' block")
    try:
        certificate = x509.load_pem_x509_certificate(data)
    except ValueError as error:
        raise PemError(f"not a readable X.509 certificate ({error})") from None
    return ParsedCertificate(
        serial=format(certificate.serial_number, "X"),
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
    )
