#!/usr/bin/env bash
# Builds and runs one benchmark of bench/ (bench/README.md) with its results written to
# bench/results/: scripts/bench.sh NAME [ARGS...], NAME one of ingest, trainer, selection,
# delta_size, apply, deploy, freshness, swap, drift_detectors, drift, distributed. Extra
# arguments go to the benchmark. (The soak is bench/soak.sh.) ingest and freshness run on the in-process mock broker and on a real
# Apache Kafka side by side (--brokers mock,kafka); Kafka comes from scripts/kafka-fetch.sh.
set -euo pipefail

name="${1:?usage: scripts/bench.sh ingest|trainer|selection|delta_size|apply|deploy|freshness|swap|drift_detectors|drift|distributed [ARGS...]}"
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
# drift_detectors: our detectors beside River's on the same streams. The benchmark writes
# the streams, River runs on them (a venv with river==0.26.1 in bench/.venv, made on first
# use; STREAMTRAIN_RIVER_PYTHON names another interpreter with river), then the table.
# Without PyPI the table still comes, without the River columns.
river_python() {
  local python="${STREAMTRAIN_RIVER_PYTHON:-$root/bench/.venv/bin/python}"
  if ! "$python" -c 'import river' 2>/dev/null && [ -z "${STREAMTRAIN_RIVER_PYTHON:-}" ]; then
    { python3 -m venv "$root/bench/.venv" && "$root/bench/.venv/bin/pip" install -q 'river==0.26.1'; } >&2 ||
      echo "bench.sh: could not install River; the table will have no River columns" >&2
  fi
  echo "$python"
}
# drift: the trainer's triggers and actions on drifting streams; River's ADWIN runs on the
# same prequential error streams (bench/river_adwin_errors.py) when it can be installed.
if [ "$name" = drift ]; then
  exec "$build/bin/streamtrain_bench_drift" --out "$root/bench/results" --python "$(river_python)" "$@"
fi
if [ "$name" = drift_detectors ]; then
  bin="$build/bin/streamtrain_bench_$name"
  tmp="$root/bench/results/tmp/drift"
  mkdir -p "$tmp"
  python="$(river_python)"
  river_args=()
  if "$python" -c 'import river' 2>/dev/null; then
    "$bin" --write-streams "$tmp/streams.txt" "$@"
    "$python" "$root/bench/river_drift_anchor.py" "$tmp/streams.txt" "$tmp/river.csv"
    river_args=(--river "$tmp/river.csv")
  fi
  status=0
  "$bin" --out "$root/bench/results" "${river_args[@]}" "$@" || status=$?
  rm -rf "$tmp"
  rmdir "$root/bench/results/tmp" 2>/dev/null || true
  exit "$status"
fi
exec "$build/bin/streamtrain_bench_$name" --out "$root/bench/results" "$@"
