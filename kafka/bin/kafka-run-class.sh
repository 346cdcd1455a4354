#!/bin/sh
# Runs a class of the Apache Kafka release that scripts/kafka-fetch.sh resolved, the way
# Apache Kafka's own bin/kafka-run-class.sh does: kafka/bin/kafka-topics.sh and the other
# wrappers here call it, so kafka/create-topics.sh runs the same outside the apache/kafka
# image (KAFKA_BIN=kafka/bin). KAFKA_HOME or STREAMTRAIN_KAFKA_HOME names the cache folder;
# by default scripts/kafka-fetch.sh finds it (and fetches it when missing).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
home="${KAFKA_HOME:-${STREAMTRAIN_KAFKA_HOME:-}}"
[ -n "$home" ] || home=$("$here/../../scripts/kafka-fetch.sh")
[ -d "$home/libs" ] || { echo "kafka-run-class: no $home/libs (run scripts/kafka-fetch.sh)" >&2; exit 1; }
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
exec "$java" ${KAFKA_HEAP_OPTS:--Xmx256m} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
  -Dlog4j2.configurationFile="$here/../config/tools-log4j2.properties" \
  -cp "$home/libs/*" "$@"
