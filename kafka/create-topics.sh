#!/bin/sh
# Creates the topics listed in topics.txt (name, partitions, replication factor, configs)
# with the Apache Kafka command-line tools, and applies their configs to topics that
# already exist. Idempotent: running it again changes nothing, or only the configs that
# were edited in topics.txt since. Never deletes a topic or lowers a partition count.
#
#   kafka/create-topics.sh                       # in the kafka-init container
#   BOOTSTRAP_SERVER=localhost:29092 KAFKA_BIN=~/kafka/bin kafka/create-topics.sh
#
# Environment: BOOTSTRAP_SERVER (kafka:9092), TOPICS_FILE (topics.txt beside this script),
# KAFKA_BIN (/opt/kafka/bin, where the apache/kafka image has the tools), WAIT_SECONDS (60:
# how long to wait for the broker to answer), COMMAND_CONFIG (a client properties file for
# a secured cluster, passed to the tools as --command-config).
set -eu

log() { echo "create-topics: $*"; }
fail() {
  echo "create-topics: $*" >&2
  exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
bootstrap="${BOOTSTRAP_SERVER:-kafka:9092}"
topics_file="${TOPICS_FILE:-$here/topics.txt}"
bin="${KAFKA_BIN:-/opt/kafka/bin}"
wait_seconds="${WAIT_SECONDS:-60}"
[ -z "${COMMAND_CONFIG:-}" ] || [ -r "$COMMAND_CONFIG" ] || fail "cannot read COMMAND_CONFIG $COMMAND_CONFIG"

# kafka_tool TOOL ARGS...: runs $bin/TOOL against the cluster.
kafka_tool() {
  tool=$1
  shift
  if [ -n "${COMMAND_CONFIG:-}" ]; then
    "$bin/$tool" --bootstrap-server "$bootstrap" --command-config "$COMMAND_CONFIG" "$@"
  else
    "$bin/$tool" --bootstrap-server "$bootstrap" "$@"
  fi
}

[ -r "$topics_file" ] || fail "cannot read $topics_file"
[ -x "$bin/kafka-topics.sh" ] || fail "no $bin/kafka-topics.sh (set KAFKA_BIN)"

# Check the whole file before touching the cluster.
line_no=0
while IFS= read -r line || [ -n "$line" ]; do
  line_no=$((line_no + 1))
  set -f
  # shellcheck disable=SC2086 # word splitting is the parser
  set -- $line
  set +f
  [ $# -eq 0 ] && continue
  case "$1" in '#'*) continue ;; esac
  [ $# -eq 4 ] || fail "$topics_file:$line_no: expected 'name partitions replication configs', got: $line"
  case "$2$3" in *[!0-9]*) fail "$topics_file:$line_no: partitions and replication must be numbers" ;; esac
done <"$topics_file"

log "waiting for $bootstrap (up to ${wait_seconds}s)"
waited=0
until kafka_tool kafka-topics.sh --list >/dev/null 2>&1; do
  [ "$waited" -ge "$wait_seconds" ] && fail "no answer from $bootstrap after ${wait_seconds}s"
  sleep 2
  waited=$((waited + 2))
done

# The tools' stdin is /dev/null so that they cannot read the rest of topics.txt.
while IFS= read -r line || [ -n "$line" ]; do
  set -f
  # shellcheck disable=SC2086
  set -- $line
  set +f
  [ $# -eq 0 ] && continue
  case "$1" in '#'*) continue ;; esac
  name=$1 partitions=$2 replication=$3 configs=$4

  # --config once per key=value; the list has no spaces, so word splitting is safe.
  config_args=""
  if [ "$configs" != "-" ]; then
    old_ifs=$IFS
    IFS=,
    for kv in $configs; do config_args="$config_args --config $kv"; done
    IFS=$old_ifs
  fi
  log "$name: $partitions partitions, replication $replication, ${configs}"
  # shellcheck disable=SC2086
  kafka_tool kafka-topics.sh --create --if-not-exists \
    --topic "$name" --partitions "$partitions" --replication-factor "$replication" \
    $config_args </dev/null || fail "$name: create failed"
  # A topic created by an earlier run keeps its old configs unless they are set again.
  if [ "$configs" != "-" ]; then
    kafka_tool kafka-configs.sh --alter --entity-type topics \
      --entity-name "$name" --add-config "$configs" </dev/null >/dev/null || fail "$name: alter configs failed"
  fi
  actual=$(kafka_tool kafka-topics.sh --describe --topic "$name" </dev/null |
    sed -n 's/.*PartitionCount:[[:space:]]*\([0-9]*\).*/\1/p' | head -n 1)
  if [ -n "$actual" ] && [ "$actual" -lt "$partitions" ]; then
    log "warning: $name has $actual partitions, topics.txt asks for $partitions" \
      "(raise it with kafka-topics.sh --alter --partitions)"
  fi
done <"$topics_file"

log "done"
