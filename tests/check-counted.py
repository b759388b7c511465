#!/usr/bin/env python3
"""The counted regression gate: instructions per call, compared with a baseline.

Usage: tests/check-counted.py BASELINE MEASURED

MEASURED is a report of `pmcp-tasks-bench` (JSON) with its `counted` rows:
the instructions one call of each operation executes natively and through
the component, counted by callgrind (repeatable to about 2 %; wall time on
this machine is not). BASELINE (tests/bench-results/counted-baseline.json)
holds the accepted count of every operation for both subjects, each row
with the reason for its figure.

Fails when an operation's count rises more than the baseline's tolerance
(5 %) above its accepted figure, or when an operation is missing from
either side. A rise that is wanted lands by raising the row's figures in
the baseline and saying why in the same row (`why`, required). A fall of
more than the tolerance passes and is pointed out, so the baseline can be
lowered and keep guarding the gain.
"""

import json
import sys

SUBJECTS = ("native", "component")


def load_measured(path):
    rows = json.load(open(path)).get("counted") or []
    return {
        row["operation"]: {
            "native": row["native_instructions"],
            "component": row["component_instructions"],
        }
        for row in rows
    }


def check(baseline, measured):
    """Returns (failures, notes), each a list of lines."""
    tolerance = baseline["tolerance"]
    failures, notes = [], []
    accepted = {row["operation"]: row for row in baseline["rows"]}
    for operation, row in accepted.items():
        if not row.get("why", "").strip():
            failures.append(f"{operation}: the baseline row says no why")
        counts = measured.get(operation)
        if counts is None:
            failures.append(f"{operation}: not counted in this run")
            continue
        for subject in SUBJECTS:
            limit, now = row[subject], counts[subject]
            change = now / limit - 1
            line = f"{operation} ({subject}): {now:,.0f} instructions per call, baseline {limit:,} ({change:+.1%})"
            if change > tolerance:
                failures.append(line + f": a rise over {tolerance:.0%}")
            elif change < -tolerance:
                notes.append(line + ": below the baseline; lower it to keep the gain")
    for operation in sorted(set(measured) - set(accepted)):
        failures.append(f"{operation}: counted but not in the baseline")
    return failures, notes


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    baseline = json.load(open(sys.argv[1]))
    measured = load_measured(sys.argv[2])
    if not measured:
        sys.exit(f"{sys.argv[2]} has no counted rows (is valgrind installed?)")
    failures, notes = check(baseline, measured)
    for line in notes:
        print("note:", line)
    if failures:
        print(f"the counted gate failed ({baseline['about']}):", file=sys.stderr)
        for line in failures:
            print("  " + line, file=sys.stderr)
        print(
            "a wanted rise lands with the baseline's figures raised and its why saying why",
            file=sys.stderr,
        )
        sys.exit(1)
    print(
        f"counted gate: {len(measured)} operations x {len(SUBJECTS)} subjects "
        f"within {baseline['tolerance']:.0%} of {sys.argv[1]}"
    )


if __name__ == "__main__":
    main()
