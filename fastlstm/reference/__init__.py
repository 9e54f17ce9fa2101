"""Plain-NumPy reference implementations, for tests and benchmarks only."""
