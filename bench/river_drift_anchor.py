#!/usr/bin/env python3
"""River's drift detectors on the drift benchmark's own streams (bench/README.md).

    river_drift_anchor.py STREAMS OUT_CSV

STREAMS is what `streamtrain_bench_drift_detectors --write-streams` writes: one line per
stream, "d seed 0101...". For each stream this runs River's drift.ADWIN(),
drift.PageHinkley(mode="up") and drift.binary.DDM() with their defaults (the defaults of
libs/drift's DetectorOptions), feeding each record as a Python int, and writes every
detection position: "detector,d,seed,positions" (positions space-separated), then
"#timing,detector,microseconds per update" and "#river,version". The C++ benchmark reads
it with --river and puts River's delays beside ours. scripts/bench.sh drift_detectors runs
all of it.
"""
import sys
import time

import river
from river import drift

DETECTORS = (
    ("adwin", lambda: drift.ADWIN()),
    ("page-hinkley", lambda: drift.PageHinkley(mode="up")),
    ("ddm", lambda: drift.binary.DDM()),
)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    streams = []
    with open(sys.argv[1]) as f:
        for line in f:
            d, seed, bits = line.split()
            streams.append((d, int(seed), [1 if c == "1" else 0 for c in bits]))
    rows = []
    timing = {}
    for name, make in DETECTORS:
        updates = 0
        seconds = 0.0
        for d, seed, xs in streams:
            detector = make()
            positions = []
            start = time.perf_counter()
            for i, x in enumerate(xs):
                detector.update(x)
                if detector.drift_detected:
                    positions.append(i)
            seconds += time.perf_counter() - start
            updates += len(xs)
            rows.append(f"{name},{d},{seed},{' '.join(map(str, positions))}")
        timing[name] = seconds / updates * 1e6
        print(f"river {name}: {len(streams)} streams, {timing[name]:.2f} us/update",
              file=sys.stderr)
    with open(sys.argv[2], "w") as out:
        out.write("detector,d,seed,positions\n")
        for row in rows:
            out.write(row + "\n")
        for name, us in timing.items():
            out.write(f"#timing,{name},{us:.4f}\n")
        out.write(f"#river,{river.__version__}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
