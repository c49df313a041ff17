"""Routing rules: ordered conditions → a pool of reps and a strategy, with an SLA."""
