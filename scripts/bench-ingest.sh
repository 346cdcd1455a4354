#!/usr/bin/env bash
# Builds and runs the ingest benchmark (bench/README.md). Results: bench/results/ingest.md
# and bench/results/ingest.csv. Extra arguments go to the benchmark, e.g. --repeats 5.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${STREAMTRAIN_BUILD_DIR:-$root/build}"

# Configure when there is no build yet, or when it was configured without the benchmarks.
if ! grep -qs '^STREAMTRAIN_BUILD_BENCH:BOOL=ON$' "$build/CMakeCache.txt"; then
  cmake -S "$root" -B "$build" -G Ninja -DSTREAMTRAIN_BUILD_BENCH=ON
fi
cmake --build "$build" --target streamtrain_bench_ingest -j 2
exec "$build/bin/streamtrain_bench_ingest" --out "$root/bench/results" "$@"
