#!/usr/bin/env bash
# Soak: `gaffer up` as PID 1 of a new PID namespace under steady churn (a process restarting every
# 100 ms, ten writing continuously, API clients polling stats, following logs and sending signals at
# random) for 10 minutes; gaffer's VmRSS, RssAnon, fds and goroutines after a 30 s warm-up and at the
# end, with the growth, and the zombies left. -storm adds 20,000 orphans after the warm-up and the
# API's latency meanwhile. Results in bench/results/RUN_ID/soak.txt and soak.json.
#
#   bench/soak/run.sh                        10 minutes
#   bench/soak/run.sh -short                 60 s (20 s warm-up)
#   bench/soak/run.sh -short -storm          with the orphan storm
#   GAFFER=/path/to/gaffer bench/soak/run.sh -d 30m    that binary, 30 minutes
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh"
bench_traps

need_root soak
need unshare sleep sh
build_gaffer
build_tool soak
mkdir -p "$OUT_DIR"
out=$OUT_DIR/soak.txt
machine_info >"$out"
echo "bench: soak, results in $out" >&2
rc=0
run_child "$BIN_DIR/soak" -gaffer "$GAFFER" -json "$OUT_DIR/soak.json" "$@" >>"$out" || rc=$?
cat "$out"
exit "$rc"
