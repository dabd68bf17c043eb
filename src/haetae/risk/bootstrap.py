"""A first model and a backtest history for a platform that has neither (``serve --demo``):
a simulated Korean bank's events, their features, and a model trained on them.

A bank replaces both with its own: ``haetae train --data`` on its labelled history, and
``HAETAE_RISK_HISTORY_PATH`` pointing at that history with features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from haetae.config import Settings
from haetae.risk.model import registry

Phase = Callable[[str], None]
# Small enough to be ready within seconds on first start, large enough for card-testing,
# voice-phishing, takeover and mule cases to be learnt from.
DEMO_CUSTOMERS = 3_000
DEMO_DAYS = 30
TRAIN_DAYS, DELAY_DAYS, TEST_DAYS = 14, 3, 7


@dataclass(frozen=True, slots=True)
class Bootstrapped:
    model_path: Path
    history_path: Path
    metrics: dict[str, float]


def has_model(models_dir: Path) -> bool:
    try:
        registry.resolve(models_dir)
    except (FileNotFoundError, registry.RegistryError):
        return False
    return True


def ensure_demo_model(settings: Settings, on_phase: Phase = lambda _: None) -> Bootstrapped | None:
    """Train the demo model unless a model is already there; returns what it made."""
    if has_model(settings.effective_models_dir):
        return None
    # Heavy imports only when there is work to do.
    from haetae.risk.features.offline import OfflineFeatures
    from haetae.risk.model.pipeline import evaluate
    from haetae.risk.model.protocol import Split, last_day
    from haetae.risk.model.train import TrainParams
    from haetae.simulate.run import Profile, simulate

    on_phase("simulating a Korean bank's events")
    events = simulate(Profile.KOREAN, seed=42, customers=DEMO_CUSTOMERS, days=DEMO_DAYS)
    builder = OfflineFeatures()
    on_phase("computing features for backtests")
    history_path = settings.effective_risk_history
    history_path.parent.mkdir(parents=True, exist_ok=True)
    builder.compute(events).write_parquet(history_path)
    split = Split.latest(last_day(events), TRAIN_DAYS, DELAY_DAYS, TEST_DAYS)
    on_phase("training the fraud model")
    result = evaluate(events, builder, split, TrainParams(seed=7, num_threads=2), on_phase)
    stored = registry.save(
        result.model,
        settings.effective_models_dir,
        metrics={**result.metrics.as_dict(), "test_rows": result.test_rows},
        meta={
            "data": f"simulated korean profile, seed 42, {DEMO_CUSTOMERS} customers, "
            f"{DEMO_DAYS} days",
            "protocol": split.as_dict(),
            "feature_builder": type(builder).__name__,
        },
    )
    return Bootstrapped(stored.path, history_path, dict(result.metrics.as_dict()))
