"""Benchmarks: each module has ``run(...) -> dict``, printed as JSON by ``causalsre bench NAME --json``."""
