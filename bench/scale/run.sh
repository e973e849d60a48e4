#!/usr/bin/env bash
# Scale: gaffer supervising 1000 `sleep infinity` (one process with numprocesses = 1000, then 1000
# entries), side by side with supervisord supervising the same, each as PID 1 of a new PID
# namespace with its stdout in a counting pipe: the time until all have started, the init's own
# cpu while idle for 60 s, GET /v1/stats latency from 4 kept-alive clients for 10 s (gaffer), and
# three exit storms (every process SIGKILLed at once) until all are reaped and restarted, with
# GET /v1/info latency meanwhile. About 12 minutes on a loaded 2-core VM. Results in
# bench/results/RUN_ID/scale.txt and scale.json.
#
#   bench/scale/run.sh                          the whole run
#   bench/scale/run.sh -short                   smoke run: 100 processes, a few seconds per init
#   bench/scale/run.sh -short -only gaffer      the same without supervisord (CI)
#   bench/scale/run.sh -perf /tmp/scale-perf    also perf record gaffer in each phase
#   GAFFER=/path/to/gaffer bench/scale/run.sh   measure that binary
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh"
bench_traps

need_root scale
need unshare sleep
only_gaffer=0 perf=0 prev=
for a in "$@"; do
	[[ ($prev == -only && $a == gaffer) || $a == -only=gaffer ]] && only_gaffer=1
	[[ $a == -perf || $a == -perf=* ]] && perf=1
	prev=$a
done
((only_gaffer)) || need supervisord
((perf)) && need perf
gaffer_args=()
# With -perf and no GAFFER, bench/scale builds gaffer itself, keeping its symbols for perf.
if [[ -n ${GAFFER:-} ]] || ((!perf)); then
	build_gaffer
	gaffer_args=(-gaffer "$GAFFER")
else
	GAFFER="(the working tree, built by bench/scale with symbols)"
fi
build_tool scale
mkdir -p "$OUT_DIR"
out=$OUT_DIR/scale.txt
machine_info >"$out"
echo "bench: scale, results in $out" >&2
rc=0
run_child "$BIN_DIR/scale" "${gaffer_args[@]}" -json "$OUT_DIR/scale.json" "$@" >>"$out" || rc=$?
cat "$out"
exit "$rc"
