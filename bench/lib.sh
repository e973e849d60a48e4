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

# SMOKE=1: a few runs of everything, to keep the scripts working (CI); the figures mean nothing.
if [[ ${SMOKE:-0} == 1 ]]; then
	: "${RUNS:=10}" "${WARMUP:=2}" "${ROUNDS:=1}" "${SAMPLES:=1}" "${SETTLE:=100ms}" "${N:=20}"
	export RUNS WARMUP ROUNDS SAMPLES SETTLE N SMOKE
fi

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

# need_peers CMD... installs the peers that are missing from Debian (their package is named as the
# command), as root with apt-get, then fails unless every one is there.
need_peers() {
	local c missing=()
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || missing+=("$c")
	done
	if ((${#missing[@]})) && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		echo "bench: installing ${missing[*]}" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; } ||
			die "apt-get install ${missing[*]} failed"
	fi
	need "$@"
}

need_root() {
	[[ $(id -u) == 0 ]] || die "$1 needs root (PID namespaces, setuid)"
}

# GAFFER_TAGS are the build tags of gaffer under test, the release's by default (README,
# Dockerfile.example); add gaffer_notls to leave https probes (crypto/tls) out.
GAFFER_TAGS=${GAFFER_TAGS:-urfave_cli_no_docs}

# build_gaffer sets GAFFER to the binary under test: $GAFFER when given, else a fresh release-like
# build of the working tree into $BIN_DIR (never the repository's own ./gaffer, which others rebuild).
build_gaffer() {
	if [[ -n ${GAFFER:-} ]]; then
		[[ -x $GAFFER ]] || die "GAFFER=$GAFFER is not executable"
		GAFFER=$(readlink -f "$GAFFER")
	else
		mkdir -p "$BIN_DIR"
		(cd "$ROOT_DIR" && CGO_ENABLED=0 go build -trimpath -tags "$GAFFER_TAGS" -ldflags='-s -w' -o "$BIN_DIR/gaffer" .) ||
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

# go_build OUT TAGS PKG: a build with the release's flags and gaffer's tags (GAFFER_TAGS) plus TAGS.
go_build() {
	(cd "$ROOT_DIR" && CGO_ENABLED=0 go build -trimpath -tags "$GAFFER_TAGS${2:+,$2}" -ldflags='-s -w' -o "$BIN_DIR/$1" "$3") ||
		die "cannot build $3 as $1"
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
