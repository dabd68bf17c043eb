"""What the certificate lifecycle needs from the platform's settings."""

from __future__ import annotations

from dataclasses import dataclass

from haetae.config import Settings


@dataclass(frozen=True, slots=True)
class CertificateSettings:
    reminder_days: tuple[int, ...] = (30, 7, 1, 0)
    reminder_hour: int = 9
    renew_url: str = "https://bank.example/certificates/renew"
    report_url: str = "https://bank.example/report"
    contact_phone: str = "1599-0000"

    @classmethod
    def from_settings(cls, settings: Settings) -> CertificateSettings:
        return cls(
            reminder_days=tuple(settings.certificate_reminder_days),
            reminder_hour=settings.certificate_reminder_hour,
            renew_url=settings.certificate_renew_url,
            report_url=settings.fraud_report_url,
            contact_phone=settings.contact_phone,
        )
