"""Helpers for `benchmarks/run.py` (stdlib only). `child.py` is the instrumented command."""
