#!/usr/bin/env bash
# Builds and runs one benchmark of bench/ (bench/README.md) with its results written to
# bench/results/: scripts/bench.sh NAME [ARGS...], NAME one of ingest, trainer, selection,
# delta_size, apply, deploy, freshness, swap. Extra arguments go to the benchmark. (The soak is
# bench/soak.sh.) ingest and freshness run on the in-process mock broker and on a real
# Apache Kafka side by side (--brokers mock,kafka); Kafka comes from scripts/kafka-fetch.sh.
set -euo pipefail

name="${1:?usage: scripts/bench.sh ingest|trainer|selection|delta_size|apply|deploy|freshness|swap [ARGS...]}"
shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${STREAMTRAIN_BUILD_DIR:-$root/build}"

# Configure when there is no build yet, or when it was configured without the benchmarks.
if ! grep -qs '^STREAMTRAIN_BUILD_BENCH:BOOL=ON$' "$build/CMakeCache.txt"; then
  cmake -S "$root" -B "$build" -G Ninja -DSTREAMTRAIN_BUILD_BENCH=ON
fi
targets=("streamtrain_bench_$name")
# The freshness benchmark runs the real replica executable.
if [ "$name" = freshness ]; then targets+=(streamtrain-replica); fi
cmake --build "$build" --target "${targets[@]}" -j 2
# The release libs/kraft starts (offline once fetched). Without it only --brokers mock runs.
if [ "$name" = ingest ] || [ "$name" = freshness ]; then
  "$root/scripts/kafka-fetch.sh" >/dev/null ||
    echo "bench.sh: Apache Kafka is not fetched; only --brokers mock will run" >&2
fi
exec "$build/bin/streamtrain_bench_$name" --out "$root/bench/results" "$@"
