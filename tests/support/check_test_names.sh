#!/usr/bin/env bash
# Fails when a Catch2 test name cannot reach CTest whole: catch_discover_tests passes each name
# as one argument in a CMake list, so a ';' splits it into tests that match nothing and "pass"
# without running, and a leading '-' makes the test binary read the name as an option.
# Usage: check_test_names.sh TEST_BINARY...
set -euo pipefail
status=0
for binary in "$@"; do
  # Catch2 v2 exits with the number of tests listed, so the status says nothing here.
  names="$("$binary" --list-test-names-only || true)"
  if [ -z "$names" ]; then
    echo "$(basename "$binary"): listed no test names"
    status=1
    continue
  fi
  bad="$(printf '%s\n' "$names" | grep -e ';' -e '^-' || true)"
  if [ -n "$bad" ]; then
    echo "$(basename "$binary"): test names with ';' or a leading '-' (CTest would not run them):"
    printf '%s\n' "$bad" | sed 's/^/  /'
    status=1
  fi
done
exit "$status"
