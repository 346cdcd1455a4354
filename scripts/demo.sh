#!/usr/bin/env bash
# The whole system in one process: `streamtrain demo`. An in-process Kafka-protocol broker
# (its bootstrap address is printed, for kcat), a producer streaming Fashion-MNIST (a
# synthetic drifting stream when it is not installed), ingest into the LMDB historical
# store, the trainer (LeNet-5: an initial model on the first 10,000 records, then proactive
# training, t = 8, publishing a 0.1% top-k delta per iteration) and two replicas serving its
# model, each with /metrics. It prints progress every 2 s and ends with a summary table
# (records, iterations, prequential accuracy of the trainer and of the replicas, bytes sent
# against the dense equivalent); it exits 0 only when every replica holds the trainer's
# final model bit for bit.
#
#   scripts/demo.sh                                   # 20,000 records at 2,000 records/s
#   scripts/demo.sh --records 60000                   # the whole training split
#   scripts/demo.sh --summary-json /tmp/summary.json  # the summary also as JSON
#   scripts/demo.sh --help                            # every flag
#
# Sets up (Debian packages) and builds first, into ${BUILD_DIR:-build}; the arguments go to
# `streamtrain demo`. Ctrl-C stops it early and still prints the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh >/dev/null
exec "${BUILD_DIR:-build}/bin/streamtrain" demo "$@"
