"""Benchmarks with recorded results (`make bench` → bench/RESULTS.md). Never timed tests."""
