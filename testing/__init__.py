"""Helpers for tests and benchmarks: random-weight models written locally, never downloaded."""
