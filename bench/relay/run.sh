#!/usr/bin/env bash
# Relay throughput into a pipe that a separate process reads and counts (as `docker logs` or a log
# shipper reads a container's output): `gaffer up` (the release binary, one process writing lines)
# side by side with the raw pipe (producer | count), cat and go-min (the smallest Go relay that
# prefixes lines: the floor of a relay in Go), s6-log (`s6-log -- 1`, Debian's s6) and supervisord
# (stdout_logfile=/dev/stdout); 1 GiB in 1 KiB lines and 10M lines of 16 bytes, written in 64 KiB
# writes; runs interleaved, medians with their spread, ratios. About 5 minutes with REPS=5.
#
#   bench/relay/run.sh                        REPS=5; GAFFER=/path/to/gaffer to measure that
#                                             binary; BEFORE=/path/to/old/gaffer adds "gaffer before"
#   SMOKE=1 bench/relay/run.sh                16 MiB and 200k lines, once: checks that it all works
#   STRACE=1 bench/relay/run.sh               also strace -f -c of gaffer up (and its producer)
#   bench/relay/run.sh -gib 0.5 -lines 2000000 -only 'raw pipe,gaffer up'   flags go to bench/relay
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh"
bench_traps

REPS=${REPS:-5}
SMOKE=${SMOKE:-0}
STRACE=${STRACE:-0}

# The peers, from Debian when missing: s6-log is in s6, supervisord in supervisor.
if ! command -v s6-log >/dev/null 2>&1 || ! command -v supervisord >/dev/null 2>&1; then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		echo "bench: installing s6 supervisor" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq s6 supervisor >/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq s6 supervisor >/dev/null 2>&1; } ||
			die "apt-get install s6 supervisor failed"
	fi
	need s6-log supervisord
fi
flags=(-reps "$REPS")
if [[ $SMOKE == 1 ]]; then
	flags=(-smoke)
fi
build_gaffer
build_tool relay
mkdir -p "$OUT_DIR"
if [[ $STRACE == 1 ]]; then
	need strace
	flags+=(-strace "$OUT_DIR")
fi
out=$OUT_DIR/relay.txt
machine_info >"$out"
echo "bench: relay into a counting pipe, results in $OUT_DIR" >&2
rc=0
if [[ -n ${BEFORE:-} ]]; then flags+=(-also "gaffer before=$BEFORE"); fi
run_child "$BIN_DIR/relay" "${flags[@]}" -gaffer "$GAFFER" -raw "$OUT_DIR/relay-runs.tsv" "$@" >>"$out" || rc=$?
cat "$out"
exit "$rc"
