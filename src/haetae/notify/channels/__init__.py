"""Delivery channels: each a real protocol behind one small port."""
