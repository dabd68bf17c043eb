"""Key-in (card-not-present) payments: validate, tokenize, score, step up, authorize."""
