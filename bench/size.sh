#!/usr/bin/env bash
# Size of each executable on disk: gaffer as released (stripped, static), gaffer without https probes
# (-tags gaffer_notls), depmin (bench/depmin: Go plus gaffer's required dependencies, the floor for
# gaffer's size) built the same two ways, go-min, and the peers as Debian ships them (tini and
# dumb-init link libc dynamically: their size leaves it out; catatonit and gosu are static).
#
#   bench/size.sh
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_traps

need_peers tini dumb-init catatonit gosu
build_gaffer
build_tool mingo
mkdir -p "$OUT_DIR"
bins=("gaffer=$GAFFER")
if [[ $GAFFER == "$BIN_DIR/gaffer" ]]; then
	(cd "$ROOT_DIR" && CGO_ENABLED=0 go build -trimpath -tags "$GAFFER_TAGS,gaffer_notls" -ldflags='-s -w' -o "$BIN_DIR/gaffer-notls" .) ||
		die "cannot build gaffer with -tags gaffer_notls"
	bins+=("gaffer-notls=$BIN_DIR/gaffer-notls")
fi
go_build depmin "" ./bench/depmin
go_build depmin-notls gaffer_notls ./bench/depmin
bins+=("depmin=$BIN_DIR/depmin" "depmin-notls=$BIN_DIR/depmin-notls" "go-min=$BIN_DIR/mingo")
if [[ -n ${BEFORE:-} ]]; then bins+=("gaffer before=$BEFORE"); fi
for p in gosu catatonit tini dumb-init; do bins+=("$p=$(command -v "$p")"); done

{
	machine_info
	echo "## executable size on disk (bytes, MB = 10^6 bytes); linkage from file(1) when it is installed"
	printf '%-12s %10s %8s  %s\n' name bytes MB linkage
	json="{"
	for b in "${bins[@]}"; do
		name=${b%%=*} path=${b#*=}
		bytes=$(stat -L -c %s "$path")
		link=$(file -bL "$path" 2>/dev/null | grep -oE 'statically linked|dynamically linked|static-pie linked' || echo "?")
		printf '%-12s %10d %8s  %s\n' "$name" "$bytes" "$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1e6 }')" "$link"
		json+="\"$name\":$bytes,"
	done
	echo "${json%,}}" >"$OUT_DIR/size.json"
} | tee "$OUT_DIR/size.txt"
