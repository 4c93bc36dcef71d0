"""Benchmarks run by hand (`python -m bench.children`); never part of the test suite."""
