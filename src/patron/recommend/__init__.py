"""Per-customer product recommendations from purchase co-occurrence (R-G1)."""
