#!/usr/bin/env bash
# Idle memory of each init as PID 1 of a new PID namespace with a `sleep 1000` child: RssAnon (what
# each container pays) and VmRSS from /proc/PID/status, Pss from /proc/PID/smaps_rollup, median of
# SAMPLES, ratios to tini.
#
#   bench/rss.sh                SAMPLES=5 SETTLE=500ms by default; target: RssAnon <= 800 kB
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_traps

SAMPLES=${SAMPLES:-5}
SETTLE=${SETTLE:-500ms}

need_peers tini dumb-init catatonit
need sleep
need_root "bench/rss.sh"
build_gaffer
build_tool rss
build_tool mingo
go_build depmin "" ./bench/depmin # Go with gaffer's dependencies, as an init: the floor with them
mkdir -p "$OUT_DIR"

# Not in a pipeline but a child of this shell, so that the EXIT trap can stop it.
# rss kills every namespace it starts, on error and on SIGINT/SIGTERM too.
machine_info >"$OUT_DIR/rss.txt"
rc=0
run_child "$BIN_DIR/rss" -gaffer "$GAFFER" -mingo "$BIN_DIR/mingo" -wrap "$BENCH_DIR/pid1env.sh" -extra "depmin=$BIN_DIR/depmin run --" ${BEFORE:+-extra "gaffer before=$BEFORE --"} -samples "$SAMPLES" -settle "$SETTLE" -out "$OUT_DIR/rss.json" >>"$OUT_DIR/rss.txt" || rc=$?
cat "$OUT_DIR/rss.txt"
exit "$rc"
