"""Settings, read once from ``HAETAE_*`` environment variables."""

from __future__ import annotations

from datetime import date, time
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# PostgreSQL connections a process keeps (SQLite has one). Every request in flight may be in
# a transaction awaiting the server at the same moment, so the pool holds as many as the
# concurrency one process serves: connections beyond it (the overflow) are closed when
# returned, and with 20 for 32 payments in flight, opening and closing them was 5% of a
# payment's CPU (bench/RESULTS.md).
DEFAULT_POOL_SIZE = 32
DEFAULT_MAX_OVERFLOW = 16


class MaintenanceWindow(BaseModel):
    """A daily window, in Asia/Seoul time, during which an issuer takes no traffic."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> MaintenanceWindow:
        start, _, end = text.partition("-")
        return cls(start=time.fromisoformat(start.strip()), end=time.fromisoformat(end.strip()))


class IssuerSettings(BaseModel):
    """Where one issuer (or the switch in front of it) listens for ISO 8583."""

    name: str = "sim"
    host: str = "127.0.0.1"
    port: int = 8583
    # Card-number prefixes routed to this issuer; empty means "every card".
    bin_prefixes: list[str] = Field(default_factory=list)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    timeout_seconds: float = 5.0
    connect_timeout_seconds: float = 2.0
    reversal_attempts: int = 5
    pool_size: int = 8

    @field_validator("maintenance", mode="before")
    @classmethod
    def _parse_windows(cls, value: object) -> object:
        if isinstance(value, str):
            return [MaintenanceWindow.parse(part) for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            return [MaintenanceWindow.parse(v) if isinstance(v, str) else v for v in value]
        return value


class ConsortiumPeerSettings(BaseModel):
    """An affiliate institution this one shares reports with (``haetae.consortium``)."""

    code: str = Field(pattern=r"^[0-9]{3}$")  # the affiliate's institution code
    url: str  # the base URL of the affiliate's Haetae, e.g. https://haetae.bank.example
    public_key: str  # its Ed25519 public key, base64 (`haetae consortium key` prints it)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HAETAE_", env_nested_delimiter="__")

    data_dir: Path = Path("var")
    database_url: str = ""
    # PostgreSQL only (SQLite has one connection): connections kept per process, and how
    # many more may be opened for a burst (closed again when returned).
    db_pool_size: int = Field(default=DEFAULT_POOL_SIZE, ge=1)
    db_max_overflow: int = Field(default=DEFAULT_MAX_OVERFLOW, ge=0)
    # SQLite only: under load, how long a group commit stays open for more writes to join
    # it (db/sqlite_group.py). Fewer, larger commits cost less CPU per payment; each write
    # waits up to this long for its commit. 0: every group commits on the next loop turn.
    sqlite_commit_delay_ms: float = Field(default=2.0, ge=0, le=100)
    bus_url: str = "memory://"
    log_level: str = "INFO"
    log_json: bool = True
    # FastAPI's own OpenTelemetry traces and metrics, for an operator who runs an OTel SDK
    # beside the platform. Off, it skips FastAPI's check on every request of whether an SDK
    # is configured (about 1% of a payment's CPU).
    opentelemetry: bool = False
    # Demo mode: the keyless checkout demo and its inbox of one-time codes. Off in a bank.
    demo: bool = False

    # Secrets for card data. Unset, they are generated once into data_dir/keys/ (fine for a
    # demo; a bank sets them from its key management system).
    master_key: str = ""
    fingerprint_key: str = ""

    issuers: list[IssuerSettings] = Field(default_factory=lambda: [IssuerSettings()])
    # A shortcut for the common case of one issuer: HAETAE_ISSUER_MAINTENANCE="23:30-00:30".
    issuer_maintenance: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Notification channels; a channel left unset is "not configured" (its deliveries fail
    # with that reason and, for push, fall back to SMS).
    smtp_url: str = ""  # smtp://host:port or smtps://host:port
    smtp_starttls: bool = False
    email_sender: str = "Haetae <no-reply@haetae.invalid>"
    sms_provider_url: str = ""
    push_provider_url: str = ""
    provider_secret: str = ""  # HMAC key for the SMS/push provider's signature header
    notify_poll_seconds: float = 0.2
    # A delivery claimed longer ago than this belongs to a worker that died: send it again.
    notify_lease_seconds: float = 60.0
    push_ack_timeout_seconds: float = 60.0

    # Certificates: expiry reminders D-n (n days before the expiry date, at this hour in
    # Seoul), and what notices tell the customer.
    certificate_reminder_days: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [30, 7, 1, 0]
    )
    certificate_reminder_hour: int = Field(default=9, ge=0, le=23)
    certificate_poll_seconds: float = 30.0
    certificate_renew_url: str = "https://bank.example/certificates/renew"
    fraud_report_url: str = "https://bank.example/report"
    contact_phone: str = "1599-0000"
    # This institution's bank code: accounts with it are held here (a reported one is
    # suspended at once); reported accounts at other banks get a suspension request.
    institution_code: str = Field(default="090", pattern=r"^[0-9]{3}$")
    # An account-takeover report revokes certificates reissued this many days before it.
    case_reissue_window_days: float = Field(default=3.0, gt=0)
    # Days this bank is closed beyond Korea's public holidays (which come from the
    # `holidays` package), e.g. HAETAE_BANK_CLOSED_DAYS='["2026-12-31"]'.
    bank_closed_days: list[date] = Field(default_factory=list)

    # Fraud engine: the online feature store (in-process; Redis at scale, e.g.
    # redis://127.0.0.1:6379/0), where trained models are kept (default data_dir/models) and
    # the labelled, featured history backtests read (default data_dir/risk/history.parquet).
    redis_url: str = ""
    models_dir: Path | None = None
    risk_history_path: Path | None = None
    # At start-up the in-process store replays the stored decisions of this many days (its
    # memory is lost with the process; Redis keeps its own). 0: no replay. The all-history
    # features ("payee seen before") need more than the 30-day windows.
    feature_replay_days: int = Field(default=365, ge=0)

    otp_ttl_seconds: int = 300
    otp_max_attempts: int = 3
    idempotency_ttl_hours: int = 24
    idempotency_wait_seconds: float = 10.0
    api_key_cache_seconds: float = 30.0
    # The largest request body taken (bytes); a larger one gets 413 before it is read
    # whole. Evidence uploads have their own limit (cases.evidence.MAX_BYTES).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Rate limits (``limits`` syntax, ";" between several): per key by kind, and failed
    # authentications per client address; counters in memory or Redis ("async+redis://…").
    rate_limit_merchant: str = "200/second"
    rate_limit_service: str = "5000/second"
    rate_limit_failed_auth: str = "30/minute"
    rate_limit_storage: str = "async+memory://"
    # Proxies (addresses or networks, comma-separated; "*" for any) whose X-Forwarded-For
    # names the client. Behind a load balancer on another host, leaving it out would make
    # every client one address, so that one client's failed keys lock out all of them.
    trusted_proxies: str = "127.0.0.1"
    outbox_poll_seconds: float = 0.5

    # Joint response with affiliate institutions (haetae.consortium; institution_code above
    # is who we are): our Ed25519 signing key (base64 32-byte seed; unset, one is generated
    # once into data_dir/consortium.key), the affiliates (a JSON list in
    # HAETAE_CONSORTIUM_PEERS), how often the sender looks for messages due, and how old (or
    # how far ahead of our clock) a received message may be.
    consortium_private_key: str = ""
    consortium_peers: list[ConsortiumPeerSettings] = Field(default_factory=list)
    consortium_poll_seconds: float = 1.0
    consortium_max_age_seconds: float = Field(default=300.0, gt=0)

    @field_validator("issuer_maintenance", mode="before")
    @classmethod
    def _split_windows(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("certificate_reminder_days", mode="before")
    @classmethod
    def _split_days(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("certificate_reminder_days")
    @classmethod
    def _check_days(cls, value: list[int]) -> list[int]:
        if not value or any(not 0 <= day <= 365 for day in value):
            raise ValueError("reminder days must be between 0 and 365, e.g. 30,7,1,0")
        return sorted(set(value), reverse=True)

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'haetae.db').as_posix()}"

    @property
    def effective_models_dir(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    @property
    def effective_risk_history(self) -> Path:
        return self.risk_history_path or self.data_dir / "risk" / "history.parquet"

    def issuer_list(self) -> list[IssuerSettings]:
        if not self.issuer_maintenance:
            return self.issuers
        windows = [MaintenanceWindow.parse(w) for w in self.issuer_maintenance]
        return [issuer.model_copy(update={"maintenance": windows}) for issuer in self.issuers]
