"""Benchmarks run by ``nox -s bench`` (``python -m benchmarks``); results in BENCHMARKS.md."""
