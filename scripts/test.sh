#!/usr/bin/env bash
# Runs every test of every module in the repository: the SDK and CLI (root module),
# then the end-to-end tests against the in-process reference registry (e2e/), then each
# fuzz target for a few seconds. Extra arguments go to every `go test` (e.g. -race, -v).
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
go test "$@" ./... | tee -a "$log"
(cd e2e && go test "$@" ./...) | tee -a "$log"

# Fuzz briefly: seeds always run above; this explores a little beyond them.
fuzztime=${FUZZTIME:-3s}
count_files() { if [ -d "$1" ]; then ls "$1" | wc -l; else echo 0; fi; }
for target in $(go test -list '^Fuzz' ./... 2>/dev/null | grep -E '^(Fuzz|ok)' | awk '
	/^Fuzz/ { names = names " " $1 }
	/^ok/   { if (names != "") { print $2 ":" substr(names, 2) }; names = "" }' | tr ' ' ','); do
	pkg=${target%%:*}
	for name in $(echo "${target#*:}" | tr ',' ' '); do
		dir=$(go list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$name
		before=$(count_files "$dir")
		if ! out=$(go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg" 2>&1); then
			if [ "$(count_files "$dir")" -gt "$before" ]; then
				echo "$out"
				echo "fuzz FAIL $pkg $name: the failing input is saved under $dir"
				exit 1
			fi
			# No failing input was found: the fuzzing engine stopped for its own reasons
			# (a short -fuzztime can end while a worker is still starting).
			echo "fuzz inconclusive  $pkg $name: $(echo "$out" | grep -v '^fuzz: elapsed' | head -3 | tr '\n' ' ')"
			continue
		fi
		echo "fuzz ok  $pkg $name ($fuzztime)" | tee -a "$log"
	done
done

# Each line counts one package's tests or one fuzz target; a failure stops the script
# before this point (set -e, pipefail).
echo "suites: $(grep -cE '^(ok|fuzz ok) ' "$log") passed, 0 failed"
