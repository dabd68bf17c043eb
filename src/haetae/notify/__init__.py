"""Customer notifications. For now: the in-app inbox, which carries step-up codes."""
