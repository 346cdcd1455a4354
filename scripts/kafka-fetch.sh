#!/usr/bin/env bash
# Resolves the Apache Kafka release pinned in kafka/pom.xml from Maven Central into a cache
# folder and prints that folder. The broker, its tools and a log4j2 binding end up as jars in
# <cache>/libs; `streamtrain broker`, the tests and kafka/bin/ run them with the Debian JRE.
# Idempotent and offline once the cache is warm: it resolves again only when kafka/pom.xml
# changed. scripts/setup.sh runs it.
#
# Environment: STREAMTRAIN_KAFKA_HOME (the cache folder; default
# ${XDG_CACHE_HOME:-~/.cache}/streamtrain/kafka-<version>).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pom="$root/kafka/pom.xml"
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")
[ -n "$version" ] || { echo "kafka-fetch: no <kafka.version> in $pom" >&2; exit 1; }
home="${STREAMTRAIN_KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/streamtrain/kafka-$version}"
stamp=$(sha256sum "$pom" | cut -d' ' -f1)

if [ -f "$home/pom.sha256" ] && [ "$(cat "$home/pom.sha256")" = "$stamp" ]; then
  echo "$home"
  exit 0
fi
command -v mvn >/dev/null || { echo "kafka-fetch: needs Maven (scripts/setup.sh installs it)" >&2; exit 1; }

# Resolve into a scratch folder, then move it into place, so an interrupted fetch never
# leaves a half-filled cache that looks complete.
mkdir -p "$(dirname "$home")"
scratch=$(mktemp -d "$home.partial.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
echo "kafka-fetch: resolving Apache Kafka $version from Maven Central into $home" >&2
mvn -B -q -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
  -DoutputDirectory="$scratch/libs" >&2
cp "$pom" "$scratch/pom.xml"
echo "$version" >"$scratch/VERSION"
echo "$stamp" >"$scratch/pom.sha256"
rm -rf "$home"
mv "$scratch" "$home"
trap - EXIT
echo "kafka-fetch: $(ls "$home/libs" | wc -l) jars, $(du -sh "$home/libs" | cut -f1)" >&2
echo "$home"
