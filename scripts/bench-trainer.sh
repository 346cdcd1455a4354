#!/usr/bin/env bash
# Builds and runs the trainer benchmark (bench/README.md): full retraining, online and
# proactive training on Fashion-MNIST, the thesis' protocol. Results: bench/results/trainer.md,
# trainer.csv, trainer_curves.csv and trainer.png (with gnuplot). About 5 minutes on 2 cores.
# Extra arguments go to the benchmark, e.g. --modes online,proactive-8.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${STREAMTRAIN_BUILD_DIR:-$root/build}"

# Configure when there is no build yet, or when it was configured without the benchmarks.
if ! grep -qs '^STREAMTRAIN_BUILD_BENCH:BOOL=ON$' "$build/CMakeCache.txt"; then
  cmake -S "$root" -B "$build" -G Ninja -DSTREAMTRAIN_BUILD_BENCH=ON
fi
cmake --build "$build" --target streamtrain_bench_trainer -j 2
exec "$build/bin/streamtrain_bench_trainer" --out "$root/bench/results" "$@"
