"""Versioned models on disk: ``<models>/<version>/`` and a ``LATEST`` pointer.

A version directory holds ``model.txt`` (LightGBM's own text format), ``calibration.json``,
``features.json`` (names, in the order the model reads them), ``metrics.json`` (its test
results) and ``meta.json`` (when, from what data, with which protocol and LightGBM version).
Versions are ``v<UTC date>-<time>-<hash of the model>``, so they sort by training time. A
version is written to a temporary directory and renamed into place: a reader never sees half
of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb

from haetae.risk.model.calibration import Calibration
from haetae.risk.model.train import FraudModel

LATEST = "LATEST"


class RegistryError(ValueError):
    """A model cannot be found or does not fit the features at hand."""


@dataclass(frozen=True, slots=True)
class StoredModel:
    version: str
    path: Path
    model: FraudModel
    metrics: dict[str, Any]
    meta: dict[str, Any]


def save(
    model: FraudModel,
    models_dir: Path,
    *,
    metrics: Mapping[str, Any],
    meta: Mapping[str, Any],
    now: datetime | None = None,
) -> StoredModel:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    text = model.booster.model_to_string()
    calibration = model.calibration.as_dict()
    digest = hashlib.sha256((text + json.dumps(calibration, sort_keys=True)).encode()).hexdigest()
    version = f"v{now:%Y%m%d-%H%M}-{digest[:8]}"
    full_meta = {
        "version": version,
        "trained_at": now.isoformat(),
        "lightgbm_version": lgb.__version__,
        **model.info,
        **meta,
    }
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / version
    if not target.exists():
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=models_dir))
        (staging / "model.txt").write_text(text, "utf-8")
        _write_json(staging / "calibration.json", calibration)
        _write_json(staging / "features.json", {"names": list(model.feature_names)})
        _write_json(staging / "metrics.json", dict(metrics))
        _write_json(staging / "meta.json", full_meta)
        staging.rename(target)
    _point_latest(models_dir, version)
    return StoredModel(version, target, model, dict(metrics), full_meta)


def resolve(models_dir: Path, version: str = "latest") -> Path:
    """The directory of ``version``; ``latest`` follows the pointer (else the newest)."""
    if version == "latest":
        pointer = models_dir / LATEST
        if pointer.is_file():
            version = pointer.read_text("utf-8").strip()
        else:
            found = sorted(p.name for p in models_dir.glob("v*") if p.is_dir())
            if not found:
                raise RegistryError(f"no model in {models_dir}: train one with `haetae train`")
            version = found[-1]
    path = models_dir / version
    if not (path / "model.txt").is_file():
        raise RegistryError(f"no model {version!r} in {models_dir}")
    return path


def load(
    models_dir: Path, version: str = "latest", available: Sequence[str] | None = None
) -> StoredModel:
    """Load a version; with ``available`` (the features the builder at hand computes), fail
    if the model needs one it does not have."""
    path = resolve(models_dir, version)
    names = tuple(_read_json(path / "features.json")["names"])
    booster = lgb.Booster(model_str=(path / "model.txt").read_text("utf-8"))
    if tuple(booster.feature_name()) != names:
        raise RegistryError(f"{path}: features.json does not match the model's features")
    if available is not None:
        missing = [name for name in names if name not in set(available)]
        if missing:
            raise RegistryError(
                f"model {path.name} needs features the feature builder lacks: {', '.join(missing)}"
            )
    meta = _read_json(path / "meta.json")
    model = FraudModel(
        booster, names, Calibration.from_dict(_read_json(path / "calibration.json")), meta
    )
    return StoredModel(path.name, path, model, _read_json(path / "metrics.json"), meta)


def _point_latest(models_dir: Path, version: str) -> None:
    staging = models_dir / f".{LATEST}.tmp"
    staging.write_text(version + "\n", "utf-8")
    os.replace(staging, models_dir / LATEST)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text("utf-8"))
    if not isinstance(data, dict):
        raise RegistryError(f"{path} is not a JSON object")
    return data
