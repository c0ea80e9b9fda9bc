#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test: unit tests, the
# real-mount tests (these need root and /dev/fuse), the tests on real Ceph
# clusters, and the fuzzers (a clang build of their own in build-fuzz/,
# each run IMAGEFS_FUZZ_SECONDS, default 30, from its seed corpus).
# Arguments go to ctest for the main build (e.g. -L unit); with any, the
# fuzzers are left out.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
(cd build && ctest --output-on-failure --timeout 300 "$@")
[ $# -eq 0 ] || exit 0

CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DIMAGEFS_FUZZ=ON -DIMAGEFS_FUZZ_SECONDS="${IMAGEFS_FUZZ_SECONDS:-30}" > /dev/null
# The locking contract (common/mutex.h annotations), checked by clang's
# -Wthread-safety on every source of the libraries except those that
# include Ceph's headers, which clang 14 cannot parse as C++20.
objects=()
for object in $(ninja -C build-fuzz -t targets all |
  sed -n -E 's#^((common|catalog|store|workflow|fs)/CMakeFiles/[^:]*\.cc\.o):.*#\1#p'); do
  source=$(echo "$object" | sed -E 's#^([a-z]+)/CMakeFiles/[^/]*\.dir/(.*)\.o$#\1/\2#')
  grep -qE '#include ([<"](rbd|rados)/|"ceph/cluster.h"|"store/rbd_pool.h")' "$source" ||
    objects+=("$object")
done
ninja -C build-fuzz --quiet "${objects[@]}"
echo "thread-safety analysis: ${#objects[@]} sources checked, no warning"
cmake --build build-fuzz -j"$(nproc)" --target import_request_fuzzer config_fuzzer record_decoder_fuzzer \
  image_format_fuzzer
cd build-fuzz
ctest -L fuzz -j"$(nproc)" --output-on-failure
# What each fuzzer tried (libFuzzer's final stats, from ctest's log).
awk '/^[0-9]+\/[0-9]+ Testing: / { name = $3 }
     /stat::number_of_executed_units/ { runs = $2 }
     /stat::new_units_added/ { printf "%s: %s inputs run, %s new ones kept, no failure\n", name, runs, $2 }' \
  Testing/Temporary/LastTest.log
