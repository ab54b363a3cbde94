"""Benchmarks of Millpond's pipeline stages, each reported as a ratio to a baseline measured in the same run.

Run with ``make bench`` (or ``python -m bench.run --help``); results land in ``docs/benchmarks/``
and ``docs/benchmarks.md``.
"""
