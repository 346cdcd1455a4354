#!/usr/bin/env python3
"""River's ADWIN over an error stream, the anchor of streamtrain_bench_drift.

Reads one 0/1 per line (1 = the record was scored wrong) from the file named on the command
line, feeds each to river.drift.ADWIN with its defaults, and prints the 0-based position of
every record at which it detected a change, one per line. Exits 2 without River.
"""
import sys

try:
    from river import drift
except ImportError:
    sys.stderr.write("river is not installed (pip install river)\n")
    sys.exit(2)


def main() -> None:
    detector = drift.ADWIN()
    with open(sys.argv[1], encoding="ascii") as errors:
        for position, line in enumerate(errors):
            detector.update(int(line))
            if detector.drift_detected:
                print(position)


if __name__ == "__main__":
    main()
