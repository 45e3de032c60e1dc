#!/usr/bin/env bash
# Side-by-side benchmark of ocipull against crane (and a bare download floor) on a
# reference registry started on 127.0.0.1. See README.md in this directory.
#
#   bench/run.sh [-rounds N] [-warmup N] [-images big,many,multi] [-no-ocipull] [-profile]
#                [-wan] [-wan-only] [-wan-images big,one] [-rate 32MiB] [-delay 40ms] [-ocipull-args '...']
#                [-proto] [-proto-only]
#
# -wan also runs the wide-area profile: the same tools through a shaping proxy
# (benchpull shape) that paces every response body at -rate on its own and delays
# every request by -delay; -wan-only runs only that. -proto also measures how chunks
# should travel to a registry that speaks HTTP/2 (benchpull proto: a TLS proxy offering
# h2 that paces every TCP connection at -rate; the SDK's HTTP/1.1 chunks against
# HTTP/2 streams of one connection); -proto-only runs only that.
#
# Needs Go and the Go module proxy (to build the pinned registry and crane once); no
# other network. Outputs: bench/results/latest.md (and latest.json), wan.md (and
# wan.json), proto.md; scratch under bench/work (binaries, generated blobs, registry storage,
# pull outputs).
set -euo pipefail

REGISTRY_VERSION=v3.1.2 # github.com/distribution/distribution/v3/cmd/registry
CRANE_VERSION=v0.22.1   # github.com/google/go-containerregistry/cmd/crane

rounds=5
warmup=1
images=big,many,multi
with_ocipull=1
profile=0
loopback=1
wan=0
wan_images=big,one
proto=0
rate=32MiB
delay=40ms
ocipull_extra=""
while [ $# -gt 0 ]; do
	case "$1" in
	-rounds) rounds=$2; shift 2 ;;
	-warmup) warmup=$2; shift 2 ;;
	-images) images=$2; shift 2 ;;
	-no-ocipull) with_ocipull=0; shift ;;
	-profile) profile=1; shift ;;
	-wan) wan=1; shift ;;
	-wan-only) wan=1; loopback=0; shift ;;
	-proto) proto=1; shift ;;
	-proto-only) proto=1; loopback=0; shift ;;
	-wan-images) wan_images=$2; shift 2 ;;
	-rate) rate=$2; shift 2 ;;
	-delay) delay=$2; shift 2 ;;
	-ocipull-args) ocipull_extra=$2; shift 2 ;;
	-h | -help | --help) sed -n '2,20p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

bench=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$bench")
work=$bench/work
bin=$work/bin
results=$bench/results
mkdir -p "$bin" "$results"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# install MODULE/CMD VERSION NAME: go install at a pinned version, once.
install() {
	local pkg=$1 version=$2 name=$3
	if [ -x "$bin/$name" ] && [ "$(cat "$bin/.$name.version" 2>/dev/null)" = "$version" ]; then
		return
	fi
	log "building $name $version (first time only; downloads modules)"
	GOBIN=$bin GOFLAGS=-buildvcs=false go install "$pkg@$version"
	echo "$version" >"$bin/.$name.version"
}
install github.com/distribution/distribution/v3/cmd/registry "$REGISTRY_VERSION" registry
install github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION" crane

log "building benchpull and pullprof"
(cd "$bench" && go build -o "$bin/benchpull" ./cmd/benchpull && go build -o "$bin/pullprof" ./cmd/pullprof)

ocipull_args=()
ocipull_version="not built"
if [ "$with_ocipull" = 1 ]; then
	log "building ocipull from $root"
	if (cd "$root" && go build -o "$bin/ocipull" ./cmd/ocipull); then
		ocipull_args=(-ocipull "$bin/ocipull")
		ocipull_version="$("$bin/ocipull" --version | awk '{print $NF}') (tree $(cd "$root" && git describe --always --dirty 2>/dev/null || echo unknown), $(go version | cut -d' ' -f3))"
	else
		log "WARNING: ocipull does not build; comparing crane with the floor only"
	fi
fi

# The reference registry, on a free port, storing under work/registry.
port=$("$bin/benchpull" freeport)
host=127.0.0.1:$port
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $host
  secret: ocistream-bench
EOF
"$bin/registry" serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
shaper_pid=""
trap 'kill $registry_pid $shaper_pid 2>/dev/null; wait $registry_pid $shaper_pid 2>/dev/null || true' EXIT
log "registry $REGISTRY_VERSION on $host (pid $registry_pid, storage $work/registry)"

all_images=$images
[ "$loopback" = 1 ] || all_images=""
[ "$wan" = 1 ] && all_images="$all_images,$wan_images"
[ "$proto" = 1 ] && all_images="$all_images,one"
"$bin/benchpull" prepare -registry "$host" -cache "$work/cache" -images "${all_images#,}"

if [ "$profile" = 1 ]; then
	# CPU profiles of the SDK pulling big into a layout directory (3 pulls each), with
	# the default fsync and without; per-blob timings; summaries in profile.txt.
	sync
	: >"$results/profile.txt"
	for mode in sync nosync; do
		flags=()
		[ "$mode" = nosync ] && flags=(-nosync)
		rm -rf "$work/pulls/profile"
		"$bin/pullprof" -ref "$host/big:latest" -o "$work/pulls/profile" -repeat 3 "${flags[@]}" \
			-cpuprofile "$results/pull-big-$mode.cpu.pprof" | sed "s/^/$mode: /" >>"$results/profile.txt"
		"$bin/pullprof" -ref "$host/big:latest" -o "$work/pulls/profile" -events -heap "${flags[@]}" |
			sed "s/^/$mode: /" >>"$results/profile.txt"
		go tool pprof -top -nodecount=30 "$bin/pullprof" "$results/pull-big-$mode.cpu.pprof" \
			>"$results/pull-big-$mode.cpu.top.txt" 2>/dev/null
	done
	rm -rf "$work/pulls/profile"
	log "profiles: $results/pull-big-{sync,nosync}.cpu.pprof, summaries in $results/profile.txt"
fi

versions=(-version "ocipull $ocipull_version" -version "crane $("$bin/crane" version)" -version "registry $REGISTRY_VERSION")
if [ "$loopback" = 1 ]; then
	"$bin/benchpull" compare -registry "$host" -work "$work" -rounds "$rounds" -warmup "$warmup" -images "$images" \
		-crane "$bin/crane" "${ocipull_args[@]}" -ocipull-args "$ocipull_extra" -out "$results/latest.md" "${versions[@]}"
	log "report: $results/latest.md"
fi

if [ "$wan" = 1 ]; then
	# The shaping proxy in front of the registry, on another free port.
	rm -f "$work/shape.out"
	"$bin/benchpull" shape -registry "$host" -listen "127.0.0.1:$("$bin/benchpull" freeport)" -rate "$rate" -delay "$delay" \
		>"$work/shape.out" 2>"$work/shape.log" &
	shaper_pid=$!
	for _ in $(seq 100); do grep -q ready "$work/shape.out" 2>/dev/null && break; sleep 0.1; done
	shaped=$(awk '/ready/ {print $2}' "$work/shape.out")
	[ -n "$shaped" ] || { log "the shaping proxy did not start"; cat "$work/shape.log" >&2; exit 1; }
	log "shaping proxy on $shaped: every response body at $rate on its own, $delay per request"
	"$bin/benchpull" compare -registry "$shaped" -work "$work" -rounds "$rounds" -warmup "$warmup" -images "$wan_images" \
		-link "every response body paced at $rate on its own, $delay added to every request (benchpull shape)" -no-floor \
		-crane "$bin/crane" "${ocipull_args[@]}" -ocipull-args "$ocipull_extra" -out "$results/wan.md" "${versions[@]}"
	log "report: $results/wan.md"
fi

if [ "$proto" = 1 ]; then
	"$bin/benchpull" proto -registry "$host" -work "$work" -repo one -rounds "$rounds" -warmup "$warmup" -rate "$rate" -delay "$delay" \
		-out "$results/proto.md"
	log "report: $results/proto.md"
fi
