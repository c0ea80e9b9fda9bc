#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test: unit tests, the
# real-mount tests (these need root and /dev/fuse), the tests on real Ceph
# clusters and on a real OpenStack cloud (Keystone, glance-api), the same unit and embedded mount tests under AddressSanitizer
# and UndefinedBehaviorSanitizer, and the fuzzers (the sanitizer build,
# build-check/; each fuzzer runs IMAGEFS_FUZZ_SECONDS, default 12, from
# its seed corpus). Arguments go to ctest for the release build alone
# (e.g. -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ $# -gt 0 ]; then
  scripts/build.sh
  cd build
  exec ctest --output-on-failure --timeout 300 "$@"
fi

# The release build: everything on the three Ceph clusters (the Glance
# catalog among them, on a real Keystone and glance-api), and the scale
# test (the daemon as operators run it). The unit tests and the embedded
# mount tests run in the sanitizer build below, so only what these need
# is built here.
scripts/build.sh imagefs imagefs_man imagefs_test_source_address rados_catalog_conformance_test \
  rbd_store_conformance_test recovery_scale_test
# The sanitizer build (build-check/, clang 19): every source with
# AddressSanitizer and UndefinedBehaviorSanitizer, and with clang's
# -Wthread-safety, which checks the locking contract of common/mutex.h
# (Ceph's headers included: clang 14 could not parse them as C++20). Its
# unit tests and embedded mount tests run under the sanitizers, any report
# failing them; the fuzzers run IMAGEFS_FUZZ_SECONDS each from their seeds.
# It compiles during the Ceph phase, at the lowest priority: that phase
# mostly waits (cut links, stopped sites, timeouts), and its tests keep
# the CPU first. That saves the build's two minutes of the run.
check_log=$(mktemp)
(
  CC=clang-19 CXX=clang++-19 cmake -S . -B build-check -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -g" -DIMAGEFS_SANITIZE=ON -DIMAGEFS_CEPH_TESTS=OFF \
    -DIMAGEFS_FUZZ=ON -DIMAGEFS_FUZZ_SECONDS="${IMAGEFS_FUZZ_SECONDS:-12}" > /dev/null
  nice -n 19 cmake --build build-check -j"$(nproc)"
) > "$check_log" 2>&1 &
check_build=$!
trap 'kill "$check_build" 2> /dev/null || true' EXIT

# Two at a time, one of them alone holding the lock `serial` (tests/
# CMakeLists.txt): the other waits for a stopped cluster of its own.
(cd build && ctest --output-on-failure --timeout 300 -L '^(ceph|scale)$' -j2)

build_status=0
wait "$check_build" || build_status=$?
trap - EXIT
if [ "$build_status" -ne 0 ]; then
  cat "$check_log"
  echo "the sanitizer build failed" >&2
  exit 1
fi
tail -n 3 "$check_log"
rm -f "$check_log"
# Every library source, as the unity sources of build-check/ include them.
sources=$(cat build-check/{common,ceph,catalog,store,workflow,fs}/CMakeFiles/*/Unity/unity_*_cxx.cxx |
  grep -c '^#include')
echo "thread-safety analysis: $sources sources checked, no warning"
cd build-check
export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer) ASAN_OPTIONS=detect_leaks=1 \
  UBSAN_OPTIONS=print_stacktrace=1
ctest --output-on-failure --timeout 300 -L '^unit$' -j"$(nproc)"
ctest --output-on-failure --timeout 300 -L '^mount$' -LE '^scale$'
ctest -L fuzz -j"$(nproc)" --output-on-failure
# What each fuzzer tried (libFuzzer's final stats, from ctest's log).
awk '/^[0-9]+\/[0-9]+ Testing: / { name = $3 }
     /stat::number_of_executed_units/ { runs = $2 }
     /stat::new_units_added/ { printf "%s: %s inputs run, %s new ones kept, no failure\n", name, runs, $2 }' \
  Testing/Temporary/LastTest.log
