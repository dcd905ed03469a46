"""Benchmarks of the zoo. The suite runner is ``python -m benchmarks.run`` from the repository
root; the other scripts here (cache.py, emodb_*.py, ...) run by path."""
