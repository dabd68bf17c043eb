"""Simulated, labelled event histories for fraud detection (``haetae simulate``).

Two profiles: the card-payment simulator of the Fraud Detection Handbook (:mod:`.handbook`)
and a Korean digital bank with voice phishing, card testing, account takeover and mule
accounts (:mod:`.korean`). Both write the event shape of :mod:`haetae.risk.events`.
"""
