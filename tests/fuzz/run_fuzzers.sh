#!/usr/bin/env bash
# Bounded fuzzing for the test suite (ctest label fuzz; fuzz/README.md): configures and
# builds the libFuzzer targets with clang, AddressSanitizer and UndefinedBehaviorSanitizer
# in BUILD_DIR (ccache makes rebuilds quick), then runs each target for
# STREAMTRAIN_FUZZ_SECONDS (default 45) from its seed corpus fuzz/corpus/<target>/.
# Fails on any crash, leak, timeout or sanitizer report; the input that caused it is left in
# BUILD_DIR/artifacts/<target>/. Exits 77 (skipped) where clang cannot build a fuzzer.
#
#   tests/fuzz/run_fuzzers.sh SOURCE_DIR BUILD_DIR [TARGET...]
#   STREAMTRAIN_FUZZ_SECONDS=600 tests/fuzz/run_fuzzers.sh . build/fuzz delta_fuzzer
set -euo pipefail

src=$(cd "${1:?usage: run_fuzzers.sh SOURCE_DIR BUILD_DIR [TARGET...]}" && pwd)
build=${2:?usage: run_fuzzers.sh SOURCE_DIR BUILD_DIR [TARGET...]}
shift 2
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(record_json_fuzzer record_binary_fuzzer delta_fuzzer snapshot_fuzzer
           replica_delta_fuzzer)
fi
seconds=${STREAMTRAIN_FUZZ_SECONDS:-45}

# clang with libFuzzer's runtime (Debian: clang and libclang-rt-dev, scripts/setup.sh).
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' \
  > "$probe/probe.cpp"
if ! command -v clang++ >/dev/null ||
   ! clang++ -fsanitize=fuzzer,address,undefined "$probe/probe.cpp" -o "$probe/probe" 2>/dev/null
then
  echo "fuzz: SKIPPED: clang++ with -fsanitize=fuzzer is not available (scripts/setup.sh)"
  exit 77
fi

mkdir -p "$build"
build=$(cd "$build" && pwd)
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
start=$SECONDS
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$src" -B "$build" "${generator[@]}" -DSTREAMTRAIN_FUZZ=ON \
    -DSTREAMTRAIN_BUILD_TESTS=OFF -DSTREAMTRAIN_BUILD_BENCH=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$build/configure.log" ||
    { cat "$build/configure.log"; exit 1; }
fi
cmake --build "$build" --parallel "${STREAMTRAIN_FUZZ_JOBS:-2}" --target "${targets[@]}" \
  > "$build/build.log" 2>&1 || { tail -n 60 "$build/build.log"; exit 1; }
echo "fuzz: built ${#targets[@]} targets in $((SECONDS - start)) s; ${seconds} s each"

failed=0
for t in "${targets[@]}"; do
  # A scratch corpus per run: new inputs never land in the committed seeds.
  work="$build/work/$t"
  artifacts="$build/artifacts/$t"
  rm -rf "$work"
  mkdir -p "$work" "$artifacts"
  log="$build/$t.log"
  rc=0
  "$build/bin/$t" "$work" "$src/fuzz/corpus/$t" -max_total_time="$seconds" -timeout=20 \
    -rss_limit_mb=2560 -max_len=16384 -print_final_stats=1 -artifact_prefix="$artifacts/" \
    > "$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ "$rc" -ne 0 ] || grep -qE 'runtime error:|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' "$log"; then
    echo "fuzz: $t FAILED (exit $rc); log $log, inputs in $artifacts:"
    grep -E -A 25 'runtime error:|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' "$log" | head -n 40
    ls -l "$artifacts"
    failed=1
  else
    echo "fuzz: $t ok: ${execs:-?} executions in ${seconds} s"
  fi
done
exit "$failed"
