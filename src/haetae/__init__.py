"""Haetae: customer protection for digital banks and payment companies."""

__version__ = "0.1.0"
