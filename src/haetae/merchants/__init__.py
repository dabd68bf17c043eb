"""Merchants: who takes payments, and their card-data and amount policies."""
