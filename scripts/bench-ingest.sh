#!/usr/bin/env bash
# Builds and runs the ingest benchmark (bench/README.md). Results: bench/results/ingest.md
# and bench/results/ingest.csv. Extra arguments go to the benchmark, e.g. --repeats 5.
exec "$(dirname "${BASH_SOURCE[0]}")/bench.sh" ingest "$@"
