#!/usr/bin/env bash
# Installs every build and run dependency from Debian packages (Debian 12 "bookworm"), then
# the Apache Kafka release kafka/pom.xml pins from Maven Central (scripts/kafka-fetch.sh).
# Idempotent: installs only what is missing, and runs apt-get update only when it must.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config clang-format git curl
  # libraries (libgloo-dev: the headers LibTorch's c10d/Gloo process group includes)
  libtorch-dev libgloo-dev librdkafka-dev nlohmann-json3-dev prometheus-cpp-dev catch2 liblmdb-dev
  libspdlog-dev libcli11-dev libssl-dev libzstd-dev zlib1g-dev libcpp-httplib-dev
  # tools and data (gnuplot draws the benchmark plots)
  kcat lmdb-utils dataset-fashion-mnist gnuplot-nox
  # operations: the dashboard test runs a real Prometheus; the compose file is validated
  prometheus docker-compose jq clang libclang-rt-dev  # clang, libFuzzer: fuzz/ (label fuzz)
  # the compose file run natively in a private network namespace (tests/compose)
  python3-yaml iproute2 util-linux
  # Apache Kafka (KRaft) for `streamtrain broker`, the demo and the kafka tests: a Java 17
  # runtime, Maven to fetch the release; the README's Python example runs in a test
  default-jre-headless maven python3-confluent-kafka openssl
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

fetch_kafka() {
  "$(dirname "$0")/kafka-fetch.sh" >/dev/null
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  fetch_kafka
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else
    echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fetch_kafka
echo "setup: done"
