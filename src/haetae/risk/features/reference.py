"""The feature reference (docs/features.md) written from the catalogue, so the two cannot
drift apart: ``python -m haetae.risk.features.reference`` prints the table."""

from __future__ import annotations

from datetime import timedelta

from haetae.risk.features.definitions import ALL_KINDS, FEATURES, MONEY, Feature

_ENTITIES = {
    "customer": "the customer",
    "card": "the card",
    "device": "the device",
    "ip": "the IP address",
    "terminal": "the terminal",
    "payee": "the payee account (bank + account number)",
    "customer_payee": "the customer with this payee",
    "customer_device": "the customer on this device",
}
_KINDS = {
    "payment": "payments",
    "transfer": "transfers",
    "login": "logins",
    "certificate_reissue": "certificate reissues",
    "payee_added": "payee registrations",
    "password_reset": "password resets",
}


def _kinds(feature: Feature) -> str:
    if feature.kinds == ALL_KINDS:
        return "events"
    if feature.kinds == MONEY:
        return "payments and transfers"
    return " and ".join(_KINDS[kind] for kind in sorted(feature.kinds))


def _span(length: timedelta) -> str:
    if length % timedelta(days=1):
        return f"{length // timedelta(hours=1)} h"
    days = length // timedelta(days=1)
    return "24 h" if days == 1 else f"{days} days"


def _window(feature: Feature) -> str:
    assert feature.window is not None
    if feature.delay:
        return f"the {_span(feature.window)} ending {_span(feature.delay)} before the event"
    return f"the {_span(feature.window)} before the event"


def describe(feature: Feature) -> str:
    """One sentence defining the feature, from its definition alone."""
    of = f"{_kinds(feature)} of {_ENTITIES.get(feature.entity or '', '')}"
    agg = feature.agg
    if agg == "event":
        return f"{feature.note}."
    if agg == "ratio":
        text = (
            f"`{feature.column}` / `{feature.over}` on {_kinds(feature)}; null on other events"
            " and when the divisor is null or 0"
        )
    elif agg == "is_new":
        text = f"True when there was no earlier event among the {of}"
    elif agg == "hours_since":
        text = f"Hours since the last of the {of}; null when none"
    else:
        window = _window(feature)
        text = {
            "count": f"Number of {of} in {window}",
            "sum": f"Sum of `{feature.column}` over the {of} in {window}",
            "mean": f"Mean `{feature.column}` of the {of} in {window}; null when none",
            "rate": (
                f"Share of the {of} in {window} with `{feature.column}` = "
                f"{str(feature.value).lower()}, among those where it is known; null when none"
            ),
            "distinct": f"Number of distinct `{feature.column}` among the {of} in {window}",
        }[agg]
    return f"{text}; {feature.note}." if feature.note else f"{text}."


def markdown_table(features: tuple[Feature, ...] = FEATURES) -> str:
    lines = ["| feature | type | definition |", "| --- | --- | --- |"]
    lines += [f"| `{f.name}` | {f.type} | {describe(f)} |" for f in features]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
