#!/usr/bin/env bash
# Registry-to-registry copy, ocipull against crane, side by side: two reference
# registries on 127.0.0.1, the `big` image (4 × 256 MiB) in the first, copied to a
# fresh repository of the second by each tool in turn (the order reversed every
# round), then a copy between two repositories of the first registry (a mount).
#
#   bench/copy.sh [-rounds N]
#
# Builds what it needs like run.sh (pinned registry and crane, ocipull from this
# tree) into bench/work/bin; prints wall time and peak RSS per run and the medians.
set -euo pipefail

REGISTRY_VERSION=v3.1.2
CRANE_VERSION=v0.22.1
rounds=3
while [ $# -gt 0 ]; do
	case "$1" in
	-rounds) rounds=$2; shift 2 ;;
	*) echo "copy.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

bench=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$bench")
work=$bench/work
bin=$work/bin
mkdir -p "$bin"
for spec in "github.com/distribution/distribution/v3/cmd/registry $REGISTRY_VERSION registry" \
	"github.com/google/go-containerregistry/cmd/crane $CRANE_VERSION crane"; do
	set -- $spec
	if [ ! -x "$bin/$3" ] || [ "$(cat "$bin/.$3.version" 2>/dev/null)" != "$2" ]; then
		GOBIN=$bin GOFLAGS=-buildvcs=false go install "$1@$2"
		echo "$2" >"$bin/.$3.version"
	fi
done
(cd "$bench" && go build -o "$bin/benchpull" ./cmd/benchpull)
(cd "$root" && go build -o "$bin/ocipull" ./cmd/ocipull)

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work/copy-a" "$work/copy-b"' EXIT
start_registry() { # NAME -> prints host
	local name=$1 port
	port=$("$bin/benchpull" freeport)
	rm -rf "$work/$name"
	cat >"$work/$name.yml" <<EOF2
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/$name}, maintenance: {uploadpurging: {enabled: false}}}
http: {addr: 127.0.0.1:$port, secret: ocistream-bench}
EOF2
	"$bin/registry" serve "$work/$name.yml" >"$work/$name.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
	echo "127.0.0.1:$port"
}
a=$(start_registry copy-a)
b=$(start_registry copy-b)
"$bin/benchpull" prepare -registry "$a" -cache "$work/cache" -images big >/dev/null

# run LABEL CMD...: one timed run; prints "LABEL wall-seconds peak-RSS-KiB".
run() {
	local label=$1 t0 t1
	shift
	t0=$(date +%s.%N)
	/usr/bin/time -f %M -o "$work/copy-rss" "$@" >/dev/null 2>"$work/copy-run.err" || { cat "$work/copy-run.err" >&2; exit 1; }
	t1=$(date +%s.%N)
	echo "$label $(echo "$t1 - $t0" | bc) $(cat "$work/copy-rss")"
}
results=$work/copy-results.txt
: >"$results"
for i in $(seq 0 "$rounds"); do
	o=(run ocipull "$bin/ocipull" -q copy "$a/big:latest" "$b/big-o-$i:latest")
	c=(run crane "$bin/crane" copy --insecure "$a/big:latest" "$b/big-c-$i:latest")
	if [ $((i % 2)) = 0 ]; then r1=$("${o[@]}"); r2=$("${c[@]}"); else r2=$("${c[@]}"); r1=$("${o[@]}"); fi
	[ "$i" = 0 ] && continue # warm-up
	echo "$r1" | tee -a "$results"
	echo "$r2" | tee -a "$results"
	m1=$(run ocipull-mount "$bin/ocipull" -q copy "$a/big:latest" "$a/big-m-$i:latest")
	m2=$(run crane-mount "$bin/crane" copy --insecure "$a/big:latest" "$a/big-n-$i:latest")
	echo "$m1" | tee -a "$results"
	echo "$m2" | tee -a "$results"
done
echo "medians (wall s, peak RSS KiB):"
for label in ocipull crane ocipull-mount crane-mount; do
	w=$(awk -v l=$label '$1==l{print $2}' "$results" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
	m=$(awk -v l=$label '$1==l{print $3}' "$results" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
	echo "  $label: $w s, $m KiB"
done
