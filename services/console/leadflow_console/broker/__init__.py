"""The broker view: end offsets, consumer-group lag, rates and dead letters."""
