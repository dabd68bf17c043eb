"""Issuer ports and adapters."""
