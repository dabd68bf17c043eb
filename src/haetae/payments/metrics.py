"""Prometheus metrics for payments."""

from prometheus_client import Counter, Histogram

PAYMENTS = Counter(
    "haetae_payments_total", "Payments by final status and error code", ["status", "error_code"]
)
ISSUER_SECONDS = Histogram(
    "haetae_issuer_request_seconds",
    "Time waiting for the issuer to answer an authorization",
    ["issuer"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
