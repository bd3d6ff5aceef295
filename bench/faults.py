"""Fault injection under traffic: what each fault costs the storefront and how long Lumi takes to be whole again.

Each fault of devtools.faults (the harness tests/faults asserts with) runs on its own fresh stack: private Redis
and Meilisearch, devshop, gunicorn with gunicorn.conf.py and real `python -m jobs.worker` processes, with feed
(and, where it matters, chat) traffic from background threads throughout. For each fault the table shows the
storefront requests answered while it lasted, the errors (and how many of them the fault makes unavoidable, with
the reason below the table), the recovery time from the end of the fault until the invariants hold (index ==
devshop's published catalogue at its latest versions, sync record completed with matching counts, nothing
pending), and the data differences left (goal: 0).

Run: `python -m bench.faults [--only NAME ...]`; LUMI_FAULTS_SCALE=10 multiplies catalogue sizes, traffic
durations and bursts (what `make faults` runs). `--quick` (from `python -m bench --quick`) is scale 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback

from bench.sync import say, table
from devtools.faults import FaultResult, run_scenario, scale, scenarios


def _errors(result: FaultResult) -> str:
    if not result.errors:
        return "0"
    if result.honest_errors == result.errors:
        return f"{result.errors} (all unavoidable*)"
    return f"{result.errors} ({result.errors - result.honest_errors} NOT explained)"


def main(argv: list[str] | None = None) -> int:
    names = list(scenarios())
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=names, metavar="NAME",
                        help=f"run only this fault (repeatable): {', '.join(names)}")
    parser.add_argument("--quick", action="store_true", help="scale 1 whatever LUMI_FAULTS_SCALE says")
    args = parser.parse_args(argv)
    if args.quick:
        os.environ["LUMI_FAULTS_SCALE"] = "1"
    logging.getLogger("devshop").setLevel(logging.ERROR)  # its webhook retries are expected here, not news
    say(f"Fault injection at scale {scale():g} (LUMI_FAULTS_SCALE), one fresh stack per fault.")
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    failed = False
    for name in args.only or names:
        started = time.monotonic()
        say(f"  {name} ...")
        try:
            result = run_scenario(name)
        except Exception:  # noqa: BLE001 - report it and go on with the other faults
            traceback.print_exc()
            rows.append((name, "-", "-", "-", "did not run"))
            failed = True
            continue
        say(f"  {name}: {time.monotonic() - started:.0f} s")
        recovery = f"{result.recovery_s:.1f}" if result.recovery_s is not None else "never"
        rows.append((result.fault, str(result.served), _errors(result), recovery, str(len(result.differences))))
        if result.honest_errors:
            notes.append(f"* {result.fault}: {result.honest}")
        notes += [f"! {result.fault}: {difference}" for difference in result.differences[:10]]
        failed |= bool(result.differences) or result.errors > result.honest_errors
    table("Faults under traffic", ("fault", "requests served during it", "errors", "recovery (s)",
                                   "data differences (goal 0)"), rows)
    for note in notes:
        say(note)
    say("recovery: from the end of the fault to the invariants holding (measured, never asserted)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
