#!/usr/bin/env bash
# Relay throughput: gaffer's relay package against the raw pipe (cat), s6-log and supervisord
# relaying to /dev/stdout, side by side in one run; 1 GiB in 1 KiB lines and 10M lines of 16
# bytes, written in 64 KiB writes. Once into /dev/null (as the numbers in issue 3 were taken), once
# into a pipe that the program drains and counts (every line must come out). About 3 minutes.
#
#   bench/relay/run.sh                          REPS=3 SINKS="null pipe"
#   REPS=1 SINKS=null bench/relay/run.sh -gib 0.25 -lines 2000000   flags go to bench/relay
#   bench/relay/run.sh -extra 'gaffer up=...'   one more contender, reading $PRODUCER
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh"
bench_traps

REPS=${REPS:-3}
SINKS=${SINKS:-null pipe}

need cat s6-log supervisord
build_tool relay
mkdir -p "$OUT_DIR"
out=$OUT_DIR/relay.txt
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) load $(cut -d' ' -f1-3 /proc/loadavg)" >"$out"
rc=0
for sink in $SINKS; do
	echo "bench: relay, sink $sink" >&2
	run_child "$BIN_DIR/relay" -reps "$REPS" -sink "$sink" "$@" >>"$out" || rc=$?
	echo >>"$out"
done
cat "$out"
exit "$rc"
