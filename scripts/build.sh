#!/usr/bin/env bash
# Configures and builds the project (Release) into ${BUILD_DIR:-build}.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTREAMTRAIN_WERROR=ON
cmake --build "$build_dir" -j "$(nproc)"
