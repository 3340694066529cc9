"""Load benchmarks of the real server against a pgbench baseline: `python -m bench` (see bench/__main__.py)."""
