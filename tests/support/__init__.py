"""Helpers that only the tests and the benchmarks use (never imported by the application)."""
