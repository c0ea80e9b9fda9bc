# The benches' common start (sourced from the repository's root, after
# their options): installs what they need and builds, progress to stderr;
# then the measuring helpers (bench/measure.sh) and IMAGEFS, the daemon.
say() { echo "bench: $*" >&2; }
scripts/install-deps.sh >&2
scripts/build.sh >&2
source bench/measure.sh
IMAGEFS=$PWD/build/fs/imagefs
