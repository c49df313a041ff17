"""The launcher: the local broker, every service as its own process, the demo organisation."""
