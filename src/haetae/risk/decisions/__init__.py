"""Every risk decision, stored with what it saw; the analysts' review queue and labels."""
