#!/bin/sh
# bench_net.sh: builds and runs the network benchmarks (bench_sync: end to
# end through kzsync and kzsyncd; bench_load: 100 pushing clients and 1000
# idle sessions).  Loopback only; every process the benchmarks start is
# stopped by its pid.  Figures and their reading: tests/bench/README.md.
#
#   tests/bench/bench_net.sh [BUILD_DIR]        (default build-bench2)
#
# Environment: REPS (default 5 for bench_sync, 3 for bench_load),
# PERF_DIR (default: none; set it to also profile one bench_sync
# repetition with perf record), KZBENCH_KEEP=1 keeps the temporary
# directories.
set -eu
cd "$(dirname "$0")/../.."
B=${1:-build-bench2}
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$B" -j2 --target kzsync kzsyncd bench_sync bench_load >/dev/null

# 1000 sessions, each a socket in kzsyncd and one in the generator.
ulimit -n 4096

"$B/tests/bench/bench_load" --reps "${REPS:-3}"
if [ -n "${PERF_DIR:-}" ]; then
    "$B/tests/bench/bench_sync" --reps "${REPS:-5}" --perf "$PERF_DIR"
else
    "$B/tests/bench/bench_sync" --reps "${REPS:-5}"
fi
