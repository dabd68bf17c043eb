"""API keys and scopes, card-data cryptography."""
