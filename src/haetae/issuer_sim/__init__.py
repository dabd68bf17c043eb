"""A simulated card issuer speaking ISO 8583 over TCP (``haetae issuer-sim``)."""

from haetae.issuer_sim.cards import TEST_CARDS, TestCard, describe_test_cards
from haetae.issuer_sim.server import AuthorizationRecord, IssuerSimulator, main

__all__ = [
    "TEST_CARDS",
    "AuthorizationRecord",
    "IssuerSimulator",
    "TestCard",
    "describe_test_cards",
    "main",
]
