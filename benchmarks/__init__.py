"""Benchmarks: side-by-side measurements in one run (`make bench-lock`, `make bench`)."""
