"""Benchmarks: each module measures one target and writes its section of BENCHMARKS.md."""
