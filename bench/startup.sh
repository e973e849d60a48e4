#!/usr/bin/env bash
# Startup cost: how much time each init (tini, dumb-init, catatonit, gaffer, go-min) and each exec
# wrapper (gosu, gaffer exec, go-min exec, depmin exec) adds around /bin/true, side by side in one
# run.
# bench/spawntime runs every command once per round in a rotating order (a busy neighbour slows
# them alike), ROUNDS times RUNS; the report gives medians, the time added over /bin/true, the
# cpu time added, and ratios (to tini, gosu and go-min).
#
#   bench/startup.sh            RUNS=300 WARMUP=20 ROUNDS=2 PID1=1 by default
#   (PID1=1: the inits also run as PID 1 of a new namespace with a private /run, bench/privrun.sh)
#   HARNESS=hyperfine bench/startup.sh    hyperfine -N instead (each command's runs back to back)
#   GAFFER=/path/to/gaffer bench/startup.sh
#   BEFORE=/path/to/older/gaffer bench/startup.sh   also measure that binary, as "gaffer before"
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_traps

RUNS=${RUNS:-300}
WARMUP=${WARMUP:-20}
ROUNDS=${ROUNDS:-2}
PID1=${PID1:-1} # also run the inits as PID 1 of a new PID namespace (bench/privrun.sh)
HARNESS=${HARNESS:-spawntime}

need_root "bench/startup.sh"
need_peers tini dumb-init catatonit gosu
need unshare mount
[[ $HARNESS == hyperfine ]] && need_peers hyperfine
build_gaffer
build_tool hfreport
build_tool spawntime
build_tool mingo
M=$BIN_DIR/mingo
# depmin: go-min's init and exec paths in a program that links gaffer's required dependencies,
# built as the release is: the floor of gaffer's time with them (their package initialisation,
# urfave/cli's parsing, the page faults of a larger binary).
go_build depmin "" ./bench/depmin
D=$BIN_DIR/depmin
mkdir -p "$OUT_DIR"
G=$GAFFER

# NAME|COMMAND. COMMAND is split on spaces (no shell). tini -s: a subreaper when not PID 1, else
# tini warns on every run.
host=(
	"true|/bin/true"
	"tini|tini -s -- /bin/true"
	"dumb-init|dumb-init /bin/true"
	"catatonit|catatonit -- /bin/true"
	"gaffer|$G -- /bin/true"
	"go-min|$M -- /bin/true"
	"depmin|$D run -- /bin/true"
	"gosu root|gosu root /bin/true"
	"gaffer exec root|$G exec --user root -- /bin/true"
	"go-min exec root|$M exec --user root -- /bin/true"
	"gosu nobody|gosu nobody /bin/true"
	"gaffer exec nobody|$G exec --user nobody -- /bin/true"
	"go-min exec nobody|$M exec --user nobody -- /bin/true"
	"depmin exec nobody|$D exec --user nobody -- /bin/true"
)
# As PID 1 of a new PID namespace, with a private /run (bench/privrun.sh), as in a container: the
# issue's harness. gosu is not an init, but it is what gaffer exec replaces and the issue's yardstick.
U="$BENCH_DIR/privrun.sh"
pid1=(
	"true|$U /bin/true"
	"tini|$U tini -- /bin/true"
	"dumb-init|$U dumb-init /bin/true"
	"catatonit|$U catatonit -- /bin/true"
	"gosu root|$U gosu root /bin/true"
	"gaffer|$U $G -- /bin/true"
	"go-min|$U $M -- /bin/true"
	"depmin|$U $D run -- /bin/true"
)

# check NAME|COMMAND...: every command must succeed and print nothing, or the timings mean little.
check() {
	local e name cmd out
	for e in "$@"; do
		name=${e%%|*} cmd=${e#*|}
		# shellcheck disable=SC2086 # split like the harness does
		if ! out=$($cmd 2>&1 </dev/null); then
			die "$name ($cmd) failed: $out"
		fi
		[[ -z $out ]] || die "$name ($cmd) printed: $out"
	done
}

# bench PREFIX ROUND NAME|COMMAND...: one round of the set into PREFIX-roundROUND.json.
bench() {
	local prefix=$1 round=$2
	shift 2
	local set=("$@") args=() i n=$#
	local json=$OUT_DIR/$prefix-round$round.json log=$OUT_DIR/$prefix-round$round.log
	if [[ $HARNESS == hyperfine ]]; then
		for ((i = 0; i < n; i++)); do
			local e=${set[i]}
			if ((round % 2 == 0)); then e=${set[n - 1 - i]}; fi
			args+=(-n "${e%%|*}" "${e#*|}")
		done
		run_child hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" "${args[@]}" >"$log" 2>&1 ||
			{ tail -n 20 "$log" >&2; die "hyperfine failed; see $log"; }
		return
	fi
	for e in "${set[@]}"; do args+=("${e%%|*}=${e#*|}"); done
	run_child "$BIN_DIR/spawntime" -runs "$RUNS" -warmup "$WARMUP" -out "$json" "${args[@]}" >"$log" 2>&1 ||
		{ tail -n 20 "$log" >&2; die "spawntime failed; see $log"; }
}

before_rows=
if [[ -n ${BEFORE:-} ]]; then
	host+=("gaffer before|$BEFORE -- /bin/true" "gaffer before exec nobody|$BEFORE exec --user nobody -- /bin/true")
	pid1+=("gaffer before|$U $BEFORE -- /bin/true")
	before_rows=",gaffer before:gosu root,gaffer:gaffer before"
fi

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
	echo "# $HARNESS, $RUNS runs (+$WARMUP warmup) per round, $ROUNDS rounds pooled, $((SECONDS - start)) s; JSON in $OUT_DIR"
	echo "# +X: X minus /bin/true's X (the time the wrapper adds); x +X: that added time over the vs command's;"
	echo "# x total: whole medians; by round: x +median of each round alone (how stable the ratio is);"
	echo "# +cpu: median user+system time added (the wrapper's and the child's), which a busy machine does not inflate"
	echo "# go-min: bench/mingo, the smallest Go program that does the same (what Go itself costs)"
	"$BIN_DIR/hfreport" -title "## startup: init -- /bin/true (ratios vs gosu root, tini, go-min)" -base true \
		-rows "tini:gosu root,catatonit:gosu root,dumb-init:gosu root,go-min:gosu root,depmin:gosu root,gaffer:gosu root,gaffer:tini,gaffer:go-min,gaffer:depmin$before_rows" \
		"$OUT_DIR"/startup-round*.json
	echo
	"$BIN_DIR/hfreport" -title "## startup: exec wrappers (ratios vs gosu with the same user, and vs go-min exec)" -base true \
		-rows "gaffer exec root:gosu root,go-min exec root:gosu root,gaffer exec nobody:gosu nobody,go-min exec nobody:gosu nobody,gaffer exec nobody:go-min exec nobody,depmin exec nobody:gosu nobody,gaffer exec nobody:depmin exec nobody${BEFORE:+,gaffer before exec nobody:gosu nobody}" \
		"$OUT_DIR"/startup-round*.json
	if ((PID1)); then
		echo
		"$BIN_DIR/hfreport" -title "## startup as PID 1 of a new namespace with a private /run (bench/privrun.sh; base: privrun.sh /bin/true; ratios vs gosu root, tini, go-min)" \
			-base true -rows "tini:gosu root,catatonit:gosu root,dumb-init:gosu root,go-min:gosu root,depmin:gosu root,gaffer:gosu root,gaffer:tini,gaffer:go-min,gaffer:depmin$before_rows" \
			"$OUT_DIR"/startup-pid1-round*.json
	fi
} | tee -a "$OUT_DIR/startup.txt"
