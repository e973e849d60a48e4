#!/usr/bin/env bash
# Runs the start-up, size, memory and signal benchmarks in one go (about 3 minutes) with one gaffer
# build, side by side with the peers (installed from Debian when missing), and prints the cost
# table of issue 13 with ratios. Everything lands in bench/results/RUN_ID/ (gitignored): the raw
# samples as JSON, one text report per benchmark, summary.txt and the table in summary.md.
#
#   bench/run.sh                                  build the working tree, run everything
#   GAFFER=/path/to/gaffer bench/run.sh           measure that binary instead
#   SMOKE=1 bench/run.sh                          a few runs of each, to keep the scripts working
#   BEFORE=/path/to/older/gaffer bench/run.sh     also measure an older build, as "gaffer before"
#   RUNS=100 ROUNDS=1 SAMPLES=3 N=500 bench/run.sh   a quicker pass
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_traps

need_root "bench/run.sh"
need_peers tini dumb-init catatonit gosu
build_gaffer
build_tool summary
mkdir -p "$OUT_DIR"
echo "bench: results in $OUT_DIR" >&2
benches=(startup size rss siglat)
for b in "${benches[@]}"; do
	echo "bench: $b" >&2
	run_child "$BENCH_DIR/$b.sh"
	echo
done
for b in "${benches[@]}"; do cat "$OUT_DIR/$b.txt"; echo; done >"$OUT_DIR/summary.txt"
{
	machine_info
	echo
	"$BIN_DIR/summary" "$OUT_DIR"
} | tee "$OUT_DIR/summary.md"
echo "bench: all reports in $OUT_DIR/summary.txt, the table in $OUT_DIR/summary.md" >&2
