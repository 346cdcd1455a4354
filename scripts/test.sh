#!/usr/bin/env bash
# The whole test suite from a fresh clone: install dependencies, check formatting,
# configure and build (Release, warnings as errors), run every ctest test.
# Extra arguments go to ctest (e.g. scripts/test.sh -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/check-format.sh
scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure --timeout 900 "$@"
