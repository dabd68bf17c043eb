"""Prometheus metrics of the fraud engine: what it decides, and when it cannot."""

from prometheus_client import Counter

DECISIONS = Counter(
    "haetae_risk_decisions_total",
    "Fraud decisions by event kind and decision",
    ["kind", "decision"],
)
STORE_FAILURES = Counter(
    "haetae_risk_store_failures_total",
    "Calls to the feature store (Redis) that failed: 'features' left an event undecided "
    "(503 risk_unavailable), 'count' and 'label' left the history one event or label short",
    ["call"],
)
