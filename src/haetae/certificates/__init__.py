"""Customers' authentication certificates: registration, renewal, reissue and reminders."""
