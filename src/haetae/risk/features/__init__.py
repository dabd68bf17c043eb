"""Fraud features: one catalogue (:mod:`.definitions`), computed online per event
(:class:`InProcessFeatureStore`, :class:`RedisFeatureStore`) and offline in batch
(:func:`compute`) with the same values."""

from haetae.risk.features.definitions import (
    FEATURE_NAMES,
    FEATURES,
    FEATURES_BY_NAME,
    Feature,
    FeatureType,
    feature_types,
)
from haetae.risk.features.offline import OfflineFeatures, compute
from haetae.risk.features.online import AsyncFeatureStore, FeatureStore, InProcessFeatureStore
from haetae.risk.features.redis_store import RedisFeatureStore

__all__ = [
    "FEATURES",
    "FEATURES_BY_NAME",
    "FEATURE_NAMES",
    "AsyncFeatureStore",
    "Feature",
    "FeatureStore",
    "FeatureType",
    "InProcessFeatureStore",
    "OfflineFeatures",
    "RedisFeatureStore",
    "compute",
    "feature_types",
]
