"""`lambdaflow calibrate`: measure this machine for the shell's cost model and store the rates
(`lambdaflow.shell.calibrate` measures, `costmodel.save_machine` stores)."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="measure this machine for the shell's cost model and store it",
        description="Time GNU sort, sort -m at several fan-ins and common commands on a "
                    "generated text, and store the rates where `lambdaflow sh` reads them "
                    "($LAMBDAFLOW_COSTMODEL, else ~/.cache/lambdaflow/costmodel.json).")
    p.add_argument("--size-mb", type=int, default=16,
                   help="sample text size (default 16; bigger is steadier and slower)")
    p.set_defaults(func=run)


def run(args) -> int:
    from lambdaflow.shell import calibrate, costmodel

    machine = calibrate.measure(args.size_mb)
    path = costmodel.save_machine(machine)
    mb = costmodel.MB
    print(f"sort (1 core): {machine.sort_rate / mb:.0f} MB/s")
    print("sort -m: " + ", ".join(f"fan-in {f}: {r / mb:.0f} MB/s"
                                  for f, r in machine.merge_rates.items()))
    print("commands: " + ", ".join(f"{n} {r / mb:.0f} MB/s"
                                   for n, r in machine.command_rates.items()))
    print(f"process start: {machine.process_start * 1000:.1f} ms; cores: {machine.cores}")
    print(f"stored in {path}")
    return 0


if __name__ == "__main__":
    sys.exit("run it as: lambdaflow calibrate")
