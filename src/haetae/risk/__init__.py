"""Fraud detection. Until the full engine lands, a provisional engine fills the port."""

from haetae.risk.engine import PaymentRiskInput, ProvisionalRiskEngine, RiskDecision, RiskEngine

__all__ = ["PaymentRiskInput", "ProvisionalRiskEngine", "RiskDecision", "RiskEngine"]
