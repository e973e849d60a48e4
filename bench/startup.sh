#!/usr/bin/env bash
# Startup cost: how much time each init (tini, dumb-init, catatonit, gaffer) and each exec wrapper
# (gosu, gaffer exec) adds around /bin/true, measured side by side by hyperfine in one run.
# The machine is noisy, so the set is measured ROUNDS times with the order reversed every other
# round, the samples are pooled, and the report gives ratios (to tini, to gosu) next to the times.
#
#   bench/startup.sh            RUNS=300 WARMUP=20 ROUNDS=2 PID1=1 by default
#   GAFFER=/path/to/gaffer bench/startup.sh
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_traps

RUNS=${RUNS:-300}
WARMUP=${WARMUP:-20}
ROUNDS=${ROUNDS:-2}
PID1=${PID1:-1} # also run the inits as PID 1 of a new PID namespace (unshare -p -f --mount-proc)
HF_STYLE=${HF_STYLE:-basic}

need hyperfine tini dumb-init catatonit gosu unshare
need_root "bench/startup.sh"
build_gaffer
build_tool hfreport
build_tool mingo
M=$BIN_DIR/mingo
mkdir -p "$OUT_DIR"
G=$GAFFER

# NAME|COMMAND. hyperfine -N splits COMMAND on spaces (no shell). tini -s: a subreaper when not
# PID 1, else tini warns on every run.
host=(
	"true|/bin/true"
	"tini|tini -s -- /bin/true"
	"dumb-init|dumb-init /bin/true"
	"catatonit|catatonit -- /bin/true"
	"gaffer|$G -- /bin/true"
	"go-min|$M -- /bin/true"
	"gosu root|gosu root /bin/true"
	"gaffer exec root|$G exec --user root -- /bin/true"
	"gosu nobody|gosu nobody /bin/true"
	"gaffer exec nobody|$G exec --user nobody -- /bin/true"
)
U="unshare -p -f --mount-proc"
pid1=(
	"true|$U /bin/true"
	"tini|$U tini -- /bin/true"
	"dumb-init|$U dumb-init /bin/true"
	"catatonit|$U catatonit -- /bin/true"
	"gaffer|$U $G -- /bin/true"
	"go-min|$U $M -- /bin/true"
)

# check NAME|COMMAND...: every command must succeed and print nothing, or the timings mean little.
check() {
	local e name cmd out
	for e in "$@"; do
		name=${e%%|*} cmd=${e#*|}
		# shellcheck disable=SC2086 # split like hyperfine -N does
		if ! out=$($cmd 2>&1 </dev/null); then
			die "$name ($cmd) failed: $out"
		fi
		[[ -z $out ]] || die "$name ($cmd) printed: $out"
	done
}

# bench PREFIX ROUND NAME|COMMAND...: one hyperfine run of the set, in order or reversed.
bench() {
	local prefix=$1 round=$2
	shift 2
	local set=("$@") args=() i n=$#
	for ((i = 0; i < n; i++)); do
		local e=${set[i]}
		if ((round % 2 == 0)); then e=${set[n - 1 - i]}; fi
		args+=(-n "${e%%|*}" "${e#*|}")
	done
	local log=$OUT_DIR/$prefix-round$round.log
	if ! run_child hyperfine -N --style "$HF_STYLE" --warmup "$WARMUP" --runs "$RUNS" \
		--export-json "$OUT_DIR/$prefix-round$round.json" "${args[@]}" >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		die "hyperfine failed; see $log"
	fi
}

check "${host[@]}"
if ((PID1)); then check "${pid1[@]}"; fi

machine_info | tee "$OUT_DIR/startup.txt"
start=$SECONDS
for ((r = 1; r <= ROUNDS; r++)); do
	echo "round $r/$ROUNDS: host" >&2
	bench startup "$r" "${host[@]}"
	if ((PID1)); then
		echo "round $r/$ROUNDS: PID 1 in a new PID namespace" >&2
		bench startup-pid1 "$r" "${pid1[@]}"
	fi
done

{
	echo "# hyperfine -N --warmup $WARMUP --runs $RUNS, $ROUNDS rounds pooled, $((SECONDS - start)) s; JSON in $OUT_DIR"
	echo "# +X: X minus the base command's X (the time the wrapper adds); x +X: that added time over the vs command's;"
	echo "# x total: whole medians; by round: x +median of each round alone (how stable the ratio is)"
	echo "# go-min: bench/mingo, the smallest Go init with gaffer's Notify-everything rule (what Go itself costs)"
	"$BIN_DIR/hfreport" -title "## startup: init -- /bin/true (ratios vs tini)" -base true \
		-rows "tini:tini,dumb-init:tini,catatonit:tini,gaffer:tini,go-min:tini,gaffer:go-min" "$OUT_DIR"/startup-round*.json
	echo
	"$BIN_DIR/hfreport" -title "## startup: exec wrappers (ratios vs gosu with the same user)" -base true \
		-rows "gosu root:gosu root,gaffer exec root:gosu root,gosu nobody:gosu nobody,gaffer exec nobody:gosu nobody" \
		"$OUT_DIR"/startup-round*.json
	if ((PID1)); then
		echo
		"$BIN_DIR/hfreport" -title "## startup as PID 1: unshare -p -f --mount-proc init -- /bin/true (base: unshare ... /bin/true; ratios vs tini)" \
			-base true -rows "tini:tini,dumb-init:tini,catatonit:tini,gaffer:tini,go-min:tini,gaffer:go-min" "$OUT_DIR"/startup-pid1-round*.json
	fi
} | tee -a "$OUT_DIR/startup.txt"
