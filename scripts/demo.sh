#!/usr/bin/env bash
# The end-to-end path: development broker -> producer (Fashion-MNIST) -> ingest -> LMDB
# historical store -> trainer (initial model on the first 10,000 records, then proactive
# training, t = 8, on the rest, publishing a sparse delta per iteration) -> replica (serves
# the trainer's model bit for bit), then what was stored, learned and served.
#
#   scripts/demo.sh                 # 20,000 records, half JSON, half binary
#   RECORDS=60000 scripts/demo.sh   # the whole training split
#
# Sets up (Debian packages) and builds first. Every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
records="${RECORDS:-20000}"
rate="${RATE:-5000}"  # records/s; the dev broker keeps only the newest 5 MiB per partition
scripts/setup.sh
scripts/build.sh >/dev/null
bin="${BUILD_DIR:-build}/bin"
work="$(mktemp -d -t streamtrain-demo-XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== development broker (in memory)"
"$bin/streamtrain" broker --topics records:8,records.dlq,model.deltas,model.snapshots \
  --bootstrap-file "$work/bootstrap" >"$work/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/bootstrap" ] && break; sleep 0.1; done
brokers="$(cat "$work/bootstrap")"
echo "   bootstrap servers: $brokers (try: kcat -L -b $brokers)"

echo "== ingest -> $work/store (metrics on http://localhost:9101/metrics)"
"$bin/streamtrain-ingest" --brokers "$brokers" --store "$work/store" --metrics-port 9101 \
  >"$work/ingest.log" 2>&1 &
pids+=($!)

# Produce only once ingest has joined its group (the first join takes about 3 s): the dev
# broker drops the oldest messages of a partition beyond 5 MiB.
for _ in $(seq 300); do
  assigned=$(curl -s localhost:9101/metrics | awk '/^streamtrain_ingest_assigned_partitions /{print $2}' || true)
  [ "${assigned:-0}" != "0" ] && break
  sleep 0.1
done

half=$((records / 2))
echo "== producing $records Fashion-MNIST records ($half JSON, then $((records - half)) binary)"
"$bin/streamtrain" produce --brokers "$brokers" --dataset fashion-mnist --limit "$half" \
  --format json --rate "$rate" --log-level warn
"$bin/streamtrain" produce --brokers "$brokers" --dataset fashion-mnist --offset "$half" \
  --limit "$((records - half))" --format binary --rate "$rate" --log-level warn
echo "== a malformed record, by hand with kcat (it goes to the dead-letter topic)"
echo '{"features": [1, 2, 3], "label": 4}' | kcat -P -b "$brokers" -t records

echo "== waiting for ingest to store them"
for _ in $(seq 600); do
  stored=$(curl -s localhost:9101/metrics | awk '/^streamtrain_store_records /{print $2}' || true)
  [ "${stored:-0}" -ge "$records" ] 2>/dev/null && break
  sleep 0.1
done
curl -s localhost:9101/metrics | grep -E '^streamtrain_(ingest_records_(stored|consumed)_total|store_(records|bytes)) |reason="wrong_length"'
if [ "${stored:-0}" -lt "$records" ]; then
  echo "demo: only ${stored:-0} of $records records were stored; see $work/ingest.log" >&2
  trap - EXIT
  exit 1
fi

echo "== dead-letter topic"
kcat -C -b "$brokers" -t records.dlq -e -q -f 'reason=%h\n' | tr ',' '\n' | grep reject.detail

kill -TERM "${pids[1]}" && wait "${pids[1]}" || true
echo "== streamtrain inspect store --json"
"$bin/streamtrain" inspect store "$work/store" --json --log-level warn

echo "== replica: bootstraps from the trainer's first snapshot, then applies its deltas" \
  "(http://localhost:8501/v1/model)"
"$bin/streamtrain-replica" --brokers "$brokers" --model-id fashion --http-port 8501 \
  >"$work/replica.log" 2>&1 &
pids+=($!)

initial=$((records / 2))
echo "== trainer: LeNet-5, initial model on $initial records (10 epochs), then proactive" \
  "training on the other $((records - initial)) (metrics on http://localhost:9102/metrics)"
# Pixels standardised with Fashion-MNIST's mean and std: (x / 255 - 0.286) / 0.353.
"$bin/streamtrain-trainer" --store "$work/store" --checkpoint-dir "$work/checkpoints" \
  --feature-scale 0.011109 --feature-shift -0.810198 \
  --initial-records "$initial" --stop-after-records "$((records - initial))" --metrics-port 9102 \
  --brokers "$brokers" --model-id fashion --sparsifier threshold --ratio 0.01
echo "== streamtrain inspect checkpoint --json"
"$bin/streamtrain" inspect checkpoint "$work/checkpoints" --json --log-level warn \
  | tee "$work/checkpoint.json"
version=$(sed -n 's/.*"version": *\([0-9]*\).*/\1/p' "$work/checkpoint.json" | head -1)
digest=$(sed -n 's/.*"digest": *"\([0-9a-f]*\)".*/\1/p' "$work/checkpoint.json" | head -1)

echo "== the replica serves the same model: GET /v1/model"
for _ in $(seq 300); do
  served=$(curl -s localhost:8501/v1/model || true)
  echo "$served" | grep -q "\"version\":$version[,}]" && break
  sleep 0.1
done
echo "$served"
if ! echo "$served" | grep -q "\"digest\":\"$digest\""; then
  echo "demo: the replica does not serve the trainer's version $version (digest $digest);" \
    "see $work/replica.log" >&2
  trap - EXIT
  exit 1
fi
echo "   version $version, digest $digest: bit-identical to the trainer's served model"
curl -s localhost:8501/metrics | grep -E '^streamtrain_replica_(deltas_applied_total|received_bytes_total|resyncs_total|digest_failures_total)' || true
echo "== POST /v1/predict (an all-black image)"
zeros=$(printf '0,%.0s' $(seq 783))
curl -s -X POST localhost:8501/v1/predict -H 'content-type: application/json' \
  -d "{\"instances\": [[${zeros}0]]}"
echo
