"""Benchmarks: speed against a naive reference pipeline, detection on public data sets (no Qt)."""
