#!/usr/bin/env bash
# API cost: gaffer's GET /v1/stats against supervisord's getAllProcessInfo (XML-RPC), each over its
# Unix socket with 100 supervised `sleep 1000`, in one run (about a minute): requests/s and p50/p99
# latency from 16 concurrent clients for 5 s, the supervisor's cpu while one client watches every
# second for 10 s (and idle for 10 s), its RSS; ratios gaffer/supervisord. Results in
# bench/results/RUN_ID/api.txt and api.json.
#
#   bench/api.sh                               build the working tree, measure both
#   GAFFER=/path/to/gaffer bench/api.sh        measure that binary
#   bench/api.sh -n 50 -c 8 -d 3s              flags go to bench/api (-only gaffer|supervisord)
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_traps

need supervisord
build_gaffer
build_tool api
mkdir -p "$OUT_DIR"
out=$OUT_DIR/api.txt
machine_info >"$out"
echo "bench: api, results in $out" >&2
rc=0
run_child "$BIN_DIR/api" -gaffer "$GAFFER" -json "$OUT_DIR/api.json" "$@" >>"$out" || rc=$?
cat "$out"
exit "$rc"
