"""`python -m bench [--quick] [--only NAME ...]`: run every benchmark module in this package, one after another."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path


def bench_modules() -> list[str]:
    """Every `bench/<name>.py` with a `main(argv)`, by name (private modules and this one excluded)."""
    here = Path(__file__).resolve().parent
    return sorted(info.name for info in pkgutil.iter_modules([str(here)])
                  if not info.name.startswith("_") and not info.ispkg)


def main(argv: list[str] | None = None) -> int:
    names = bench_modules()
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run Lumi's benchmarks.")
    parser.add_argument("--quick", action="store_true", help="smaller sizes in every benchmark")
    parser.add_argument("--only", action="append", choices=names, metavar="NAME",
                        help=f"run only this module (repeatable): {', '.join(names)}")
    args = parser.parse_args(argv)
    failed: list[str] = []
    for name in args.only or names:
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "main", None)
        if run is None:
            continue
        print(f"\n===== bench.{name}{' --quick' if args.quick else ''} =====", flush=True)
        started = time.monotonic()
        try:
            code = int(run(["--quick"] if args.quick else []) or 0)
        except Exception:  # noqa: BLE001 - report it and go on with the other benchmarks
            traceback.print_exc()
            code = 1
        print(f"===== bench.{name}: exit {code} after {time.monotonic() - started:.0f} s =====", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
