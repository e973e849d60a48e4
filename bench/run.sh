#!/usr/bin/env bash
# Runs the three benchmarks in one go (about 1.5 minutes) with one gaffer build; the results of the
# run land in bench/results/RUN_ID/ (gitignored): hyperfine JSON, raw samples, and the reports.
#
#   bench/run.sh                                  build the working tree, run everything
#   GAFFER=/path/to/gaffer bench/run.sh           measure that binary instead
#   RUNS=100 ROUNDS=1 SAMPLES=3 N=500 bench/run.sh   a quick pass
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_traps

need_root "bench/run.sh"
build_gaffer
mkdir -p "$OUT_DIR"
echo "bench: results in $OUT_DIR" >&2
for b in startup rss siglat; do
	echo "bench: $b" >&2
	run_child "$BENCH_DIR/$b.sh"
	echo
done
for b in startup rss siglat; do cat "$OUT_DIR/$b.txt"; echo; done >"$OUT_DIR/summary.txt"
echo "bench: all reports in $OUT_DIR/summary.txt" >&2
