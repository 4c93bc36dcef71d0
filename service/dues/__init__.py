"""党费 (party dues): payments, back-payments, quarterly arrangements."""
