# shellcheck shell=bash
# Shared by the bench scripts: paths, the gaffer binary under test, peer checks, and running a
# command so that the EXIT trap can stop it. Source it; it does not run anything by itself.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(dirname "$BENCH_DIR")
# One directory per run, so the three benchmarks of one bench/run.sh land together.
RUN_ID=${RUN_ID:-$(date +%Y%m%d-%H%M%S)}
OUT_DIR=${OUT_DIR:-$BENCH_DIR/results/$RUN_ID}
BIN_DIR=${BIN_DIR:-$BENCH_DIR/results/bin}
export RUN_ID OUT_DIR BIN_DIR

die() {
	echo "bench: $*" >&2
	exit 1
}

# need CMD... fails unless every command is installed.
need() {
	local c missing=()
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || missing+=("$c")
	done
	if ((${#missing[@]})); then
		die "missing: ${missing[*]} (apt-get install -y tini dumb-init catatonit gosu hyperfine util-linux)"
	fi
}

need_root() {
	[[ $(id -u) == 0 ]] || die "$1 needs root (PID namespaces, setuid)"
}

# build_gaffer sets GAFFER to the binary under test: $GAFFER when given, else a fresh release-like
# build of the working tree into $BIN_DIR (never the repository's own ./gaffer, which others rebuild).
build_gaffer() {
	if [[ -n ${GAFFER:-} ]]; then
		[[ -x $GAFFER ]] || die "GAFFER=$GAFFER is not executable"
		GAFFER=$(readlink -f "$GAFFER")
	else
		mkdir -p "$BIN_DIR"
		(cd "$ROOT_DIR" && CGO_ENABLED=0 go build -trimpath -tags urfave_cli_no_docs -ldflags='-s -w' -o "$BIN_DIR/gaffer" .) ||
			die "cannot build gaffer"
		GAFFER=$BIN_DIR/gaffer
	fi
	export GAFFER
}

# build_tool NAME builds the Go program bench/NAME into $BIN_DIR/NAME, with gaffer's release flags
# (bench/mingo is measured beside gaffer).
build_tool() {
	mkdir -p "$BIN_DIR"
	(cd "$ROOT_DIR" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$BIN_DIR/$1" "./bench/$1") ||
		die "cannot build bench/$1"
}

# run_child CMD... runs CMD in the background and waits for it, so that the EXIT trap installed by
# bench_traps can stop it (a foreground child would keep the trap from running until it ends).
CHILD_PID=
run_child() {
	"$@" &
	CHILD_PID=$!
	local rc=0
	wait "$CHILD_PID" || rc=$?
	CHILD_PID=
	return "$rc"
}

bench_cleanup() {
	if [[ -n ${CHILD_PID:-} ]] && kill -0 "$CHILD_PID" 2>/dev/null; then
		kill -TERM "$CHILD_PID" 2>/dev/null || true
		local i
		for i in $(seq 50); do
			kill -0 "$CHILD_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$CHILD_PID" 2>/dev/null || true
		wait "$CHILD_PID" 2>/dev/null || true
	fi
}

bench_traps() {
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# machine_info prints one line about where the numbers come from.
machine_info() {
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -r) $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg); gaffer $GAFFER"
}
