"""A whole simulation: the chosen profiles, with the command line's overrides, as one
sorted history."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from enum import StrEnum

import polars as pl

from haetae.simulate.frames import PhaseHook, no_phase
from haetae.simulate.handbook import HANDBOOK_PHASES, HandbookParams, simulate_handbook
from haetae.simulate.korean import KOREAN_PHASES, KoreanParams, simulate_korean
from haetae.simulate.writer import assemble

ASSEMBLE_PHASE = "sorting and numbering"


class Profile(StrEnum):
    HANDBOOK = "handbook"
    KOREAN = "korean"
    ALL = "all"


def phases(profile: Profile) -> tuple[str, ...]:
    """The phases :func:`simulate` reports, in order (to size a progress bar)."""
    handbook = HANDBOOK_PHASES if profile is not Profile.KOREAN else ()
    korean = KOREAN_PHASES if profile is not Profile.HANDBOOK else ()
    return (*handbook, *korean, ASSEMBLE_PHASE)


def handbook_params(
    customers: int | None = None, days: int | None = None, start: date | None = None
) -> HandbookParams:
    """The handbook's parameters with overrides; terminals stay twice the customers, as in
    the handbook, so each customer keeps as many terminals within reach."""
    params = HandbookParams()
    if customers is not None:
        params = replace(params, customers=customers, terminals=2 * customers)
    return replace(params, days=days or params.days, start=start or params.start)


def korean_params(
    customers: int | None = None, days: int | None = None, start: date | None = None
) -> KoreanParams:
    params = KoreanParams()
    return replace(
        params,
        customers=customers or params.customers,
        days=days or params.days,
        start=start or params.start,
    )


def simulate(
    profile: Profile = Profile.ALL,
    *,
    seed: int = 42,
    customers: int | None = None,
    days: int | None = None,
    start: date | None = None,
    on_phase: PhaseHook = no_phase,
) -> pl.DataFrame:
    frames = []
    if profile is not Profile.KOREAN:
        params = handbook_params(customers, days, start)
        frames.append(simulate_handbook(params, seed=seed, on_phase=on_phase).events)
    if profile is not Profile.HANDBOOK:
        korean = korean_params(customers, days, start)
        frames.append(simulate_korean(korean, seed=seed, on_phase=on_phase))
    events = assemble(frames)
    on_phase(ASSEMBLE_PHASE)
    return events
