#!/usr/bin/env bash
# The main job, offline: serve the small image shipped in testdata/hello as a registry
# on loopback, then pull it with ocipull into an OCI layout, verify it, list its tags
# and unpack it. Each ocipull command is printed before it runs. Needs only Go.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
srv=
cleanup() {
	if [ -n "$srv" ]; then kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/ocipull" ./cmd/ocipull
run() {
	echo "+ ocipull $*" >&2
	"$work/ocipull" "$@"
}

echo "+ ocipull serve testdata/hello --listen 127.0.0.1:0 &" >&2
"$work/ocipull" serve testdata/hello --listen 127.0.0.1:0 2>"$work/serve.log" &
srv=$!
addr=
for _ in $(seq 200); do
	addr=$(sed -n 's|^serving .* at http://\([^ ]*\) .*|\1|p' "$work/serve.log")
	[ -n "$addr" ] && break
	kill -0 "$srv" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
	sleep 0.05
done
[ -n "$addr" ] || { echo "try.sh: ocipull serve did not start" >&2; exit 1; }
addr=localhost:${addr##*:}

run pull "$addr/hello" -o "$work/hello"
run verify "$work/hello"
run tags "$addr/hello"
run unpack "oci:$work/hello" "$work/rootfs"
echo "+ cat rootfs/hello.txt" >&2
cat "$work/rootfs/hello.txt"
