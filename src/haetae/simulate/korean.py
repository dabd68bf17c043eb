"""A Korean digital bank's event history: genuine logins, transfers, certificate upkeep and
key-in payments, with labelled voice phishing, card testing, account takeover and mule
accounts laid on top (see :mod:`haetae.simulate.scenarios`). Amounts are whole won."""

from __future__ import annotations

import numpy as np
import polars as pl

from haetae.simulate import genuine
from haetae.simulate.frames import PhaseHook, concat_events, no_phase
from haetae.simulate.korean_params import FraudRates, KoreanParams
from haetae.simulate.population import draw_population
from haetae.simulate.scenarios import SCENARIOS

__all__ = ["KOREAN_PHASES", "FraudRates", "KoreanParams", "simulate_korean"]

_GENUINE_PHASES = {
    "logins and transfers": genuine.sessions,
    "certificates and passwords": genuine.upkeep,
    "key-in payments": genuine.payments,
}
KOREAN_PHASES = (
    "bank customers",
    *_GENUINE_PHASES,
    *(name.replace("_", " ") for name in SCENARIOS),
)
_STREAM = 2  # keeps this profile's draws independent of the handbook's under the same seed


def simulate_korean(
    params: KoreanParams | None = None, *, seed: int = 42, on_phase: PhaseHook = no_phase
) -> pl.DataFrame:
    params = params or KoreanParams()
    rng = np.random.default_rng([seed, _STREAM])
    pop = draw_population(rng, params.customers, params.merchants, params.days)
    on_phase(KOREAN_PHASES[0])
    frames = []
    for name, make in _GENUINE_PHASES.items():
        frames.append(make(rng, pop, params))
        on_phase(name)
    for name, scenario in SCENARIOS.items():
        frames.append(scenario(rng, pop, params))
        on_phase(name.replace("_", " "))
    return concat_events(frames)
