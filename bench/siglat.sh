#!/usr/bin/env bash
# Signal forwarding latency: SIGUSR1 sent to each init until its child's handler runs, all inits
# at once, one signal at a time, round robin. See bench/siglat/main.go.
#
#   bench/siglat.sh             N=1000 WARMUP=50 PID1=1 by default
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_traps

N=${N:-1000}
WARMUP=${WARMUP:-50}
PID1=${PID1:-1}

need_peers tini dumb-init catatonit
pid1=true
if ((PID1)); then
	need_root "bench/siglat.sh (PID1=0 runs the inits as plain children)"
else
	pid1=false
fi
build_gaffer
build_tool siglat
build_tool mingo
mkdir -p "$OUT_DIR"

# Not in a pipeline but a child of this shell, so that the EXIT trap can stop it.
# siglat stops every init it starts, on error and on SIGINT/SIGTERM too;
# it exits 3 when a signal was lost, after its report.
machine_info >"$OUT_DIR/siglat.txt"
rc=0
wrap=
if ((PID1)); then wrap=$BENCH_DIR/pid1env.sh; fi # its own /proc and /run, as in a container
run_child "$BIN_DIR/siglat" -gaffer "$GAFFER" -mingo "$BIN_DIR/mingo" -n "$N" -warmup "$WARMUP" -pid1="$pid1" -wrap "$wrap" ${BEFORE:+-extra "gaffer before=$BEFORE --"} -out "$OUT_DIR/siglat.json" >>"$OUT_DIR/siglat.txt" || rc=$?
cat "$OUT_DIR/siglat.txt"
exit "$rc"
