#!/usr/bin/env bash
# The dashboard test: every PromQL expression of every dashboard in dashboards/json/ must
# evaluate, in a real Prometheus scraping the real services, to a non-empty result with at
# least one finite value. Also checks the dashboards' Grafana conventions, the production
# Prometheus config (promtool check config) and every service's /metrics
# (promtool check metrics), all without warnings.
#
#   tests/dashboard/dashboard_test.sh BIN_DIR DASHBOARDS_DIR     # ctest -L dashboard
#
# Starts the development broker, ingest, a producer (the synthetic hyperplane stream at
# 200 records/s, plus one malformed record sent with kcat), the trainer (mlp:16, deploying
# sparse deltas), one replica with --served-accuracy, a training group of two trainer ranks
# (docs/distributed.md: each with its own ingest and store, the two ingests in a consumer
# group of their own; adaptive top-k, stream truncation and data injection on, so that every
# group series moves), and Prometheus (scrape interval 1 s), every one on loopback and on
# free ports. Grafana's variables are replaced by concrete
# values ($__rate_interval and $__interval by 1m, $__range by 5m). Stops every process it
# started on exit, whatever happens; KEEP_WORK=1 keeps the work directory (logs, config).
# Exit status: 0 passed, 1 failed, 77 skipped (a tool is missing: scripts/setup.sh
# installs them).
set -euo pipefail

bin="${1:?usage: dashboard_test.sh BIN_DIR DASHBOARDS_DIR}"
dashboards="${2:?usage: dashboard_test.sh BIN_DIR DASHBOARDS_DIR}"

for tool in prometheus promtool curl jq kcat; do
  if ! command -v "$tool" >/dev/null; then
    echo "dashboard test: SKIPPED: $tool is not installed (scripts/setup.sh installs it)"
    exit 77
  fi
done
for exe in streamtrain streamtrain-ingest streamtrain-trainer streamtrain-replica; do
  [ -x "$bin/$exe" ] || { echo "dashboard test: $bin/$exe is not built" >&2; exit 1; }
done

start_time=$SECONDS
work="$(mktemp -d -t streamtrain-dashboard-XXXXXX)"
pids=()
names=()
failed=0

log() { echo "[$((SECONDS - start_time))s] $*"; }
fail() {
  echo "FAIL: $*" >&2
  failed=1
}

cleanup() {
  local status=$?
  # Newest first: Prometheus, the producer, replica, trainer, ingest, then the broker.
  local i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid="${pids[$i]}"
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 300); do  # the broker's controlled shutdown takes a few seconds
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "dashboard test: ${names[$i]} (pid $pid) ignored SIGTERM for 30 s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
    for f in "$work"/*.log; do
      [ -f "$f" ] || continue
      echo "---- last lines of $(basename "$f")" >&2
      tail -n 15 "$f" >&2
    done
  fi
  if [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "dashboard test: work directory kept: $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# start NAME COMMAND...: runs COMMAND in the background, output in $work/NAME.log.
start() {
  local name="$1"
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}

# alive NAME: whether the process started as NAME still runs.
alive() {
  local i
  for i in "${!names[@]}"; do
    if [ "${names[$i]}" = "$1" ]; then
      kill -0 "${pids[$i]}" 2>/dev/null
      return
    fi
  done
  return 1
}

# http_port NAME: the port a service logged it serves /metrics on (started with port 0).
http_port() {
  local port=""
  for _ in $(seq 300); do
    port=$(sed -n 's/.*serving \/metrics and \/healthz on [^ ]*:\([0-9][0-9]*\).*/\1/p' \
      "$work/$1.log" | head -1)
    [ -n "$port" ] && break
    alive "$1" || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "dashboard test: $1 did not start serving /metrics" >&2
    exit 1
  fi
  echo "$port"
}

# metric PORT NAME: the value of an unlabelled sample NAME on localhost:PORT/metrics.
metric() {
  curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}' || true
}

# free_port: a loopback port nothing listens on (for Prometheus, which cannot report a
# port it chose itself); below Linux's ephemeral range, where ports 0 land.
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# query EXPR: Prometheus' /api/v1/query answer (JSON).
query() {
  curl -sS --max-time 10 --get --data-urlencode "query=$1" "$prom/api/v1/query" || true
}

# verdict: reads a query answer; prints "ok N" or why the expression fails.
verdict() {
  jq -r '
    def finite: . != "NaN" and . != "+Inf" and . != "-Inf";
    if .status != "success" then "error: \(.errorType // "?"): \(.error // "?")"
    elif .data.resultType == "scalar" then
      (if (.data.result[1] | finite) then "ok 1" else "not finite: \(.data.result[1])" end)
    elif (.data.result | length) == 0 then "empty result"
    elif ([.data.result[] | (.value // .values[-1])[1] | select(finite)] | length) == 0 then
      "no finite value: \([.data.result[] | (.value // .values[-1])[1]] | unique | join(", "))"
    else "ok \(.data.result | length) series" end' 2>/dev/null || echo "unreadable answer"
}

# ---------------------------------------------------------------- static checks
log "checking $dashboards/prometheus.yml"
if ! out=$(promtool check config "$dashboards/prometheus.yml" 2>&1); then
  fail "promtool check config $dashboards/prometheus.yml: $out"
elif grep -qi warn <<<"$out"; then
  fail "promtool check config $dashboards/prometheus.yml warns: $out"
fi

mapfile -t dashboard_files < <(find "$dashboards" -name '*.json' -type f | sort)
if [ ${#dashboard_files[@]} -eq 0 ]; then
  echo "dashboard test: no dashboard JSON under $dashboards" >&2
  exit 1
fi
for f in "${dashboard_files[@]}"; do
  log "checking Grafana conventions of $f"
  if ! problems=$(jq -r '
      def all_panels: .panels[]? | ., (.panels[]? // empty);
      def ds_ok: (.datasource.uid? // "") | test("^\\$\\{?datasource\\}?$");
      (if (.uid // "") == "" then "no uid" else empty end),
      (if (.title // "") == "" then "no title" else empty end),
      (if (.schemaVersion // 0) < 36 then "schemaVersion \(.schemaVersion) is not a current Grafana" else empty end),
      (if ([.templating.list[]? | select(.name == "datasource" and .type == "datasource" and .query == "prometheus")] | length) != 1
       then "no template variable `datasource` of type datasource (query prometheus)" else empty end),
      (if ([all_panels | select(.type == "row")] | length) == 0 then "no rows" else empty end),
      (if ([all_panels | .id] | length) != ([all_panels | .id] | unique | length) then "panel ids are not unique" else empty end),
      (all_panels | select(.type != "row") | (.title // "?") as $t |
        (if (.description // "") == "" then "panel \"\($t)\": no description" else empty end),
        (if (.fieldConfig.defaults.unit // "") == "" then "panel \"\($t)\": no unit" else empty end),
        (if ds_ok | not then "panel \"\($t)\": datasource is not ${datasource}" else empty end),
        (if (.targets // []) | length == 0 then "panel \"\($t)\": no targets" else empty end),
        (.targets[]? | select((.datasource // null) != null and (ds_ok | not)) |
          "panel \"\($t)\" target \(.refId): datasource is not ${datasource}"),
        (.targets[]? | select((.expr // "") == "") | "panel \"\($t)\" target \(.refId): no expr"))
    ' "$f"); then
    fail "$f is not valid JSON"
  elif [ -n "$problems" ]; then
    while IFS= read -r p; do fail "$(basename "$f"): $p"; done <<<"$problems"
  fi
done

# ---------------------------------------------------------------- the services
log "starting the development broker (Apache Kafka, one node)"
start broker "$bin/streamtrain" broker --topics records:4,records.dlq,model.deltas,model.snapshots \
  --bootstrap-file "$work/bootstrap" --data-dir "$work/kafka"
for _ in $(seq 1800); do  # a JVM start and topic creation; slower on a loaded machine
  [ -s "$work/bootstrap" ] && break
  sleep 0.1
done
[ -s "$work/bootstrap" ] || { echo "dashboard test: the broker did not start" >&2; exit 1; }
brokers="$(cat "$work/bootstrap")"

log "starting ingest"
start ingest "$bin/streamtrain-ingest" --brokers "$brokers" --store "$work/store" \
  --input-shape 10 --num-classes 2 --metrics-port 0
ingest_port=$(http_port ingest)
for _ in $(seq 600); do  # the first group join takes about 3 s
  assigned=$(metric "$ingest_port" streamtrain_ingest_assigned_partitions)
  [ "${assigned:-0}" != 0 ] && break
  sleep 0.1
done
[ "${assigned:-0}" != 0 ] || { echo "dashboard test: ingest joined no group in 60 s" >&2; exit 1; }

log "producing 600 records for the initial model"
"$bin/streamtrain" produce --brokers "$brokers" --dataset hyperplane:seed=3 --limit 600 \
  --format binary --log-level warn >"$work/produce-initial.log" 2>&1

log "starting the trainer and a replica"
start trainer "$bin/streamtrain-trainer" --store "$work/store" --checkpoint-dir "$work/checkpoints" \
  --model mlp:16 --feature-scale 1 --lr 0.01 --initial-records 500 --initial-epochs 2 \
  --brokers "$brokers" --model-id dashboard --ratio 0.05 --snapshot-every 200 --metrics-port 0 \
  --drift-detector adwin
start replica "$bin/streamtrain-replica" --brokers "$brokers" --model-id dashboard \
  --bind-address 127.0.0.1 --http-port 0 --served-accuracy --served-accuracy-window 200
trainer_port=$(http_port trainer)
replica_port=$(http_port replica)

# The training group: the single trainer above keeps the drift and deployment panels
# (drift triggers are refused in a group); the group's ranks feed the "Distributed training"
# row. Rank 0 trains the initial model on its store and, without --brokers, publishes nothing.
rendezvous_port=$(free_port)
log "starting a training group of 2 ranks (rendezvous 127.0.0.1:$rendezvous_port), each with its own ingest"
group_ports=()
for rank in 0 1; do
  start "ingest-rank$rank" "$bin/streamtrain-ingest" --brokers "$brokers" \
    --store "$work/store-rank$rank" --group dashboard-group --input-shape 10 --num-classes 2 \
    --metrics-port 0
  start "trainer-rank$rank" "$bin/streamtrain-trainer" --store "$work/store-rank$rank" \
    --checkpoint-dir "$work/checkpoints-rank$rank" --model mlp:16 --feature-scale 1 --lr 0.01 \
    --initial-records 200 --initial-epochs 2 --metrics-port 0 \
    --world-size 2 --rank "$rank" --rendezvous "127.0.0.1:$rendezvous_port" \
    --compression adaptive-topk --topk-ratio 0.1 --stream-buffer truncate --buffer-records 64 \
    --inject-alpha 0.5 --inject-beta 0.25 --digest-every 20
done
for rank in 0 1; do
  group_ports+=("$(http_port "ingest-rank$rank")" "$(http_port "trainer-rank$rank")")
done

log "streaming records at 200/s, and one malformed record"
start producer "$bin/streamtrain" produce --brokers "$brokers" --dataset hyperplane:seed=4 \
  --limit 20000 --rate 200 --format binary
echo '{"features": [1, 2, 3], "label": 1}' | kcat -P -b "$brokers" -t records

# ---------------------------------------------------------------- Prometheus
cat >"$work/prometheus.yml" <<EOF
# Written by tests/dashboard/dashboard_test.sh: the jobs of dashboards/prometheus.yml on
# loopback ports.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ingest
    static_configs:
      - targets: ["127.0.0.1:$ingest_port", "127.0.0.1:${group_ports[0]}", "127.0.0.1:${group_ports[2]}"]
  - job_name: trainer
    static_configs:
      - targets: ["127.0.0.1:$trainer_port", "127.0.0.1:${group_ports[1]}", "127.0.0.1:${group_ports[3]}"]
  - job_name: replica
    static_configs:
      - targets: ["127.0.0.1:$replica_port"]
EOF
if ! out=$(promtool check config "$work/prometheus.yml" 2>&1) || grep -qi warn <<<"$out"; then
  echo "dashboard test: promtool check config on the test's config: $out" >&2
  exit 1
fi

prom=""
for attempt in 1 2 3; do
  port=$(free_port)
  log "starting Prometheus on 127.0.0.1:$port"
  start "prometheus-$attempt" prometheus --config.file="$work/prometheus.yml" \
    --storage.tsdb.path="$work/tsdb-$attempt" --web.listen-address="127.0.0.1:$port"
  for _ in $(seq 300); do
    if curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
      prom="http://127.0.0.1:$port"
      break 2
    fi
    alive "prometheus-$attempt" || break  # the port was taken meanwhile: another one
    sleep 0.1
  done
done
[ -n "$prom" ] || { echo "dashboard test: Prometheus did not start" >&2; exit 1; }

targets=7
log "waiting for the $targets targets to be up"
for _ in $(seq 60); do
  up=$(query 'count(up == 1)' | jq -r '.data.result[0].value[1] // 0' 2>/dev/null || echo 0)
  [ "$up" = "$targets" ] && break
  sleep 0.5
done
if [ "$up" != "$targets" ]; then
  curl -s "$prom/api/v1/targets" | jq -r '.data.activeTargets[] | "\(.scrapeUrl): \(.health) \(.lastError)"' >&2
  echo "dashboard test: only ${up:-0} of $targets targets are up" >&2
  exit 1
fi

log "waiting for the replica's first model, then predicting"
for _ in $(seq 300); do
  curl -sf "http://127.0.0.1:$replica_port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
for _ in $(seq 10); do
  if ! curl -sf -X POST "http://127.0.0.1:$replica_port/v1/predict" \
    -H 'content-type: application/json' \
    -d '{"instances": [[0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6, 0.5, 0.5]]}' >/dev/null; then
    fail "POST /v1/predict on the replica failed"
    break
  fi
done

# ---------------------------------------------------------------- promtool check metrics
for svc in ingest:$ingest_port trainer:$trainer_port replica:$replica_port \
  trainer-rank0:${group_ports[1]} trainer-rank1:${group_ports[3]}; do
  name=${svc%%:*}
  port=${svc##*:}
  log "promtool check metrics on $name's /metrics"
  if ! curl -sf "http://127.0.0.1:$port/metrics" >"$work/$name.metrics"; then
    fail "GET /metrics on $name failed"
    continue
  fi
  if ! out=$(promtool check metrics <"$work/$name.metrics" 2>&1) || [ -n "$out" ]; then
    fail "promtool check metrics on $name's /metrics: $out"
  fi
done

# ---------------------------------------------------------------- the expressions
# One line per target: file, panel title, refId, the expression on one line with Grafana's
# variables replaced.
for f in "${dashboard_files[@]}"; do
  jq -r --arg file "$(basename "$f")" '
    .panels[]? | ., (.panels[]? // empty) | select(.targets) | .title as $t |
    .targets[] | select(.expr) |
    [$file, $t, .refId,
     (.expr | gsub("\\$\\{?__rate_interval\\}?"; "1m") | gsub("\\$\\{?__interval\\}?"; "1m")
            | gsub("\\$\\{?__range\\}?"; "5m"))] | map(gsub("[\\t\\n]"; " ")) | join("\t")' "$f"
done >"$work/expressions.tsv"
total=$(wc -l <"$work/expressions.tsv")
log "evaluating $total expressions (retrying for up to 90 s while data arrives)"

# Until every expression passes or the deadline: rate() needs two samples in its window,
# and the replica's and the trainer's series need a few iterations.
deadline=$((SECONDS + 90))
while :; do
  : >"$work/verdicts.txt"
  bad=0
  while IFS=$'\t' read -r file panel ref expr; do
    if [[ "$expr" == *'$'* ]]; then
      v="uses a Grafana variable the test does not know"
    else
      v=$(query "$expr" | verdict)
    fi
    [[ "$v" == ok* ]] || bad=$((bad + 1))
    printf '%s\t%s\t%s\t%s\t%s\n' "$v" "$file" "$panel" "$ref" "$expr" >>"$work/verdicts.txt"
  done <"$work/expressions.tsv"
  [ "$bad" -eq 0 ] && break
  [ "$SECONDS" -ge "$deadline" ] && break
  log "$bad of $total expressions not satisfied yet"
  sleep 3
done

while IFS=$'\t' read -r v file panel ref expr; do
  if [[ "$v" == ok* ]]; then
    echo "  ok   $file \"$panel\" $ref ($v)"
  else
    fail "$file, panel \"$panel\", target $ref: $v
       expr: $expr"
  fi
done <"$work/verdicts.txt"

# The malformed record was counted (the rejected series are there from the start anyway).
rejected=$(query 'sum(streamtrain_ingest_records_rejected_total)' | jq -r '.data.result[0].value[1] // 0' || true)
[ "${rejected%.*}" -ge 1 ] 2>/dev/null || fail "the malformed record was not counted as rejected"

if [ "$failed" -ne 0 ]; then
  log "dashboard test FAILED"
  exit 1
fi
log "dashboard test passed: $total expressions over ${#dashboard_files[@]} dashboard(s)"
