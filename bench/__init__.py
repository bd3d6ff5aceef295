"""Benchmarks that print ratios measured side by side in the same run (never wall-clock assertions).

Each module here exposes `main(argv) -> int` and accepts `--quick` (smaller sizes, same measurements);
`python -m bench` runs every one of them, `python -m bench.<name>` one.
"""
