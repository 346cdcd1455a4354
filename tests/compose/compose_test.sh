#!/usr/bin/env bash
# The compose test: what can be checked of docker-compose.yml, the Dockerfile and kafka/
# without a Docker engine.
#
#   tests/compose/compose_test.sh SOURCE_DIR BIN_DIR        # ctest -L compose
#
# 1. `docker-compose -f docker-compose.yml config -q` accepts the file (docker-compose 1.29,
#    the Debian package scripts/setup.sh installs) and it has the services the docs name.
# 2. Every file or directory the services bind-mount from the repository exists (a missing
#    one would be created by Docker as an empty directory, and Prometheus or Grafana would
#    start without its configuration).
# 3. kafka/create-topics.sh is valid POSIX sh, and, run against stand-ins for Kafka's
#    kafka-topics.sh and kafka-configs.sh, creates every topic of kafka/topics.txt with
#    --if-not-exists, its partitions and its configs; it refuses a malformed topics.txt.
# 4. Every shared library the built executables link directly comes from a package the
#    Dockerfile's runtime stage installs (or from debian:bookworm-slim itself).
# 5. docker-compose.yml's apache/kafka images and every Kafka version the docs name are the
#    release kafka/pom.xml pins.
# 6. The training group's ranks are consistent (tests/compose/training_group_check.py: ranks
#    0..W-1, the rendezvous at rank 0, a store, checkpoint volume and ingest per rank,
#    `restart: on-failure`).
set -euo pipefail

src="${1:?usage: compose_test.sh SOURCE_DIR BIN_DIR}"
bin="${2:?usage: compose_test.sh SOURCE_DIR BIN_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$src"
failures=0
fail() {
  echo "compose test: FAILED: $*" >&2
  failures=$((failures + 1))
}
work="$(mktemp -d -t streamtrain-compose-XXXXXX)"
trap 'rm -rf "$work"' EXIT

command -v docker-compose >/dev/null || {
  echo "compose test: docker-compose is not installed (scripts/setup.sh installs it)" >&2
  exit 1
}

# 1. The file is valid and complete.
if ! docker-compose -f docker-compose.yml config -q; then
  fail "docker-compose config rejects docker-compose.yml"
else
  services="$(docker-compose -f docker-compose.yml config --services | sort | tr '\n' ' ')"
  for s in kafka kafka-init ingest ingest-1 trainer trainer-1 replica-1 replica-2 producer \
    prometheus grafana; do
    case " $services" in *" $s "*) ;; *) fail "no service '$s' (have: $services)" ;; esac
  done

  # 2. Bind mounts from the repository exist. `config` prints them as SOURCE:TARGET[:MODE]
  # with SOURCE made absolute.
  docker-compose -f docker-compose.yml config >"$work/config.yml"
  mounts=0
  while IFS= read -r source; do
    mounts=$((mounts + 1))
    [ -e "$source" ] || fail "bind-mount source ${source#"$PWD"/} does not exist"
  done < <(sed -n "s|^ *- \\($PWD/[^:]*\\):.*|\\1|p" "$work/config.yml")
  [ "$mounts" -ge 4 ] || fail "found $mounts bind mounts from the repository, expected at least 4"

  # 6. The training group.
  if ! group="$(/usr/bin/python3 "$here/training_group_check.py" "$work/config.yml")"; then
    fail "the training group of docker-compose.yml:"$'\n'"$group"
  fi
fi

# 3. The topic script.
sh -n kafka/create-topics.sh || fail "kafka/create-topics.sh: syntax error"
mkdir -p "$work/kafka-bin"
for tool in kafka-topics.sh kafka-configs.sh; do
  cat >"$work/kafka-bin/$tool" <<EOF
#!/bin/sh
echo "$tool \$*" >>"$work/calls"
case "\$*" in *--describe*) printf 'Topic: t\tPartitionCount: 8\tReplicationFactor: 1\n' ;; esac
EOF
  chmod +x "$work/kafka-bin/$tool"
done
if ! KAFKA_BIN="$work/kafka-bin" BOOTSTRAP_SERVER=broker:9092 \
  sh kafka/create-topics.sh >"$work/create.log" 2>&1; then
  cat "$work/create.log" >&2
  fail "kafka/create-topics.sh failed against the stand-in tools"
fi
expect_call() {
  grep -qF -- "$1" "$work/calls" 2>/dev/null || fail "create-topics.sh never ran: $1"
}
expect_call "kafka-topics.sh --bootstrap-server broker:9092 --create --if-not-exists --topic records --partitions 8 "
for topic in records.dlq model.deltas model.snapshots; do
  expect_call "kafka-topics.sh --bootstrap-server broker:9092 --create --if-not-exists --topic $topic --partitions 1 "
done
expect_call "--topic model.snapshots --partitions 1 --replication-factor 1 --config retention.ms="
expect_call "kafka-configs.sh --bootstrap-server broker:9092 --alter --entity-type topics --entity-name model.deltas --add-config "
# Snapshot chunks are up to 512 KiB plus a header; deltas up to about 1 MB.
for topic in model.deltas model.snapshots; do
  max=$(awk -v t="$topic" '$1 == t { if (match($4, /max\.message\.bytes=[0-9]+/)) print substr($4, RSTART + 18, RLENGTH - 18) }' kafka/topics.txt)
  [ "${max:-0}" -ge 1100000 ] || fail "$topic: max.message.bytes ${max:-unset} < 1100000 in kafka/topics.txt"
done
printf 'records 8\n' >"$work/bad-topics.txt"
if KAFKA_BIN="$work/kafka-bin" TOPICS_FILE="$work/bad-topics.txt" \
  sh kafka/create-topics.sh >/dev/null 2>&1; then
  fail "create-topics.sh accepted a line without replication factor and configs"
fi

# 4. The runtime image has every library the executables link.
runtime_packages="$(awk '/^FROM debian:bookworm-slim/ { rt = 1 }
  rt && /apt-get install/ { on = 1 }
  on { for (i = 1; i <= NF; i++) if ($i ~ /^[a-z0-9][a-z0-9.+-]+$/) print $i }
  on && /rm -rf/ { on = 0 }' Dockerfile | sort -u | tr '\n' ' ')"
base_packages="libc6 libgcc-s1 libstdc++6"
[ -n "$runtime_packages" ] || fail "found no apt-get install in the Dockerfile's runtime stage"
# NAME PATH for every library an executable names in DT_NEEDED, as the loader resolves it.
for exe in streamtrain streamtrain-ingest streamtrain-trainer streamtrain-replica; do
  [ -x "$bin/$exe" ] || { fail "$bin/$exe is not built"; continue; }
  ldd "$bin/$exe" | awk -v needed=" $(readelf -d "$bin/$exe" |
    sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')" \
    'index(needed, " " $1 " ") && $3 ~ /^\// { print $1, $3 }'
done | sort -u >"$work/needed"
# One dpkg query for all of them; with merged /usr a file is registered under /lib or /usr/lib.
while read -r _ path; do
  printf '%s\n' "$path" "${path#/usr}" "/usr${path#/usr}"
done <"$work/needed" | sort -u | xargs -r dpkg -S 2>/dev/null | sed 's/:[^:]*: / /' >"$work/owners" || true
checked=0
while read -r name path; do
  checked=$((checked + 1))
  owner="$(awk -v p="$path" -v q="${path#/usr}" '$2 == p || $2 == q || $2 == "/usr" q { print $1; exit }' "$work/owners")"
  if [ -z "$owner" ]; then
    fail "the executables link $name ($path), which no Debian package owns"
  elif [[ " $runtime_packages $base_packages " != *" $owner "* ]]; then
    fail "the executables link $name from $owner, which the Dockerfile's runtime stage does not install"
  fi
done <"$work/needed"
[ "$checked" -gt 0 ] || fail "checked no libraries"

# 5. One Apache Kafka version everywhere. kafka/pom.xml pins it (the release `streamtrain
# broker`, the tests and kafka/bin run); docker-compose.yml's apache/kafka images and every
# Kafka version the docs name must be the same, or users run one Kafka and we test another.
# kafka_version_mismatches ROOT prints one line per disagreement under ROOT, nothing when
# all agree.
# (A subshell function: it works in ROOT.)
kafka_version_mismatches() (
  cd "$1"
  want=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' kafka/pom.xml)
  if [ -z "$want" ]; then
    echo "kafka/pom.xml: no <kafka.version>"
    exit 0
  fi
  images=$(grep -cE '^[[:space:]]*image:[[:space:]]*"?apache/kafka:' docker-compose.yml || true)
  [ "$images" -ge 2 ] || echo "docker-compose.yml: $images apache/kafka images, expected kafka and kafka-init"
  grep -qF "apache/kafka:$want" docs/operations.md ||
    echo "docs/operations.md: does not name the image apache/kafka:$want"
  # "apache/kafka:X", "Apache Kafka X.Y.Z", "Kafka X.Y.Z" (not librdkafka, confluent-kafka).
  for file in docker-compose.yml Dockerfile README.md kafka/README.md docs/*.md; do
    [ -f "$file" ] || continue
    grep -noE '(^|[^[:alnum:]_-])(apache/kafka:v?[0-9][0-9.]*|[Kk]afka[ -]v?[0-9]+\.[0-9]+\.[0-9]+)' \
      "$file" | while IFS=: read -r line match; do
      found=$(printf '%s' "$match" | grep -oE '[0-9][0-9.]*[0-9]' | head -n 1)
      [ "$found" = "$want" ] || echo "$file:$line: Kafka $found ('${match#?}'), kafka/pom.xml pins $want"
    done || true # grep finds nothing in most files
  done
)
mismatches="$(kafka_version_mismatches "$src")"
[ -z "$mismatches" ] || fail "Kafka versions disagree:"$'\n'"$mismatches"
# The check itself: a copy where the docs name another release must be caught.
mkdir -p "$work/versions/kafka" "$work/versions/docs"
cp kafka/pom.xml "$work/versions/kafka/"
cp docker-compose.yml "$work/versions/"
sed 's|apache/kafka:[0-9][0-9.]*|apache/kafka:0.0.1|' docs/operations.md >"$work/versions/docs/operations.md"
[ -n "$(kafka_version_mismatches "$work/versions")" ] ||
  fail "the Kafka version check missed apache/kafka:0.0.1 in a copy of docs/operations.md"
kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' kafka/pom.xml)"

if [ "$failures" -gt 0 ]; then
  echo "compose test: $failures failure(s)" >&2
  exit 1
fi
echo "compose test: passed (docker-compose config, $mounts bind mounts, a training group of" \
  "${group%% *} ranks, kafka/create-topics.sh," \
  "$checked linked libraries covered by the runtime image, Apache Kafka $kafka_version in" \
  "kafka/pom.xml, docker-compose.yml and the docs)"
