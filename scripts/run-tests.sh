#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test: unit tests and the
# real-mount tests (these need root and /dev/fuse).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd build
ctest --output-on-failure --timeout 300 "$@"
