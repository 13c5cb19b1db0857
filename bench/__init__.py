"""Benchmarks: `make bench` (results in bench/results/<date>.json and .md). Not tests: numbers, not verdicts."""
