#!/usr/bin/env bash
# Build libccb in Release and run every benchmark, then write the figures as
# JSON (bench-results.json) and a short text table (bench-results.txt) with
# the machine they were measured on.
#
#   test/bench/run-benchmarks.sh [--full] [--out DIR] [--build DIR]
#
# Default: 10000 registrations through ccb_load against a freshly started
# `ccbctl broker`; --full: 50000 and 100000 (spread over load processes by
# ccb_load itself; needs a high open-file limit). Loopback only.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build="$src/build-release"
out="$PWD"
full=0
while [ $# -gt 0 ]; do
	case "$1" in
	--full) full=1 ;;
	--out) out=$2; shift ;;
	--build) build=$2; shift ;;
	-h|--help) sed -n '2,11p' "$0"; exit 0 ;;
	*) echo "unknown argument: $1" >&2; exit 2 ;;
	esac
	shift
done
mkdir -p "$out"
json="$out/bench-results.json"
txt="$out/bench-results.txt"

cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench_cedar bench_dial bench_broker bench_relay bench_outbound ccb_load ccbctl >/dev/null
bench="$build/test/bench"
ccbctl="$build/bin/ccbctl/ccbctl"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
tmp=$(mktemp -d /tmp/ccb-bench.XXXXXX)
broker_pid=
cleanup() {
	[ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# The JSON line ("{...}") of a bench's output; its table goes to the text file.
run() {
	local name=$1; shift
	echo "== $name: $*" | tee -a "$tmp/table" >&2
	"$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || { echo "$name failed:" >&2; cat "$tmp/$name.err" >&2; return 1; }
	grep -v '^{' "$tmp/$name.out" >>"$tmp/table" || true
	grep '^{' "$tmp/$name.out" | tail -1 >"$tmp/$name.json"
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
: >"$tmp/table"
run cedar "$bench/bench_cedar"
run dial "$bench/bench_dial" -n 200
run bkbench "$bench/bench_broker" 10000
run relay "$bench/bench_relay" -t 2
run outbound "$bench/bench_outbound" -t 2

# ccb_load against a real `ccbctl broker`.
cat >"$tmp/brokercfg.json" <<JSON
{"CCB_SERVER_LISTEN": "127.0.0.1:0", "SEC_DEFAULT_AUTHENTICATION_METHODS": "CLAIMTOBE",
 "SEC_CLAIMTOBE_USER": "condor", "UID_DOMAIN": "vm", "ALLOW_DAEMON": "condor@vm",
 "ALLOW_READ": "*"}
JSON
"$ccbctl" broker -c "$tmp/brokercfg.json" >"$tmp/broker.out" 2>"$tmp/broker.err" &
broker_pid=$!
for _ in $(seq 100); do grep -q '^listening' "$tmp/broker.out" && break; sleep 0.1; done
port=$(sed -n 's/.* ports \([0-9]*\).*/\1/p' "$tmp/broker.out")
[ -n "$port" ] || { echo "ccbctl broker did not start" >&2; cat "$tmp/broker.err" >&2; exit 1; }
sizes="10000"
[ "$full" = 1 ] && sizes="50000 100000"
loads=()
for n in $sizes; do
	run "load$n" "$bench/ccb_load" -b "127.0.0.1:$port" -c "$tmp/brokercfg.json" -n "$n" -H 5 \
		-r 1000 -P "$broker_pid"
	loads+=("$(cat "$tmp/load$n.json")")
	# A fresh broker for the next size: RSS per registration stays comparable.
	kill "$broker_pid"; wait "$broker_pid" 2>/dev/null || true
	"$ccbctl" broker -c "$tmp/brokercfg.json" >"$tmp/broker.out" 2>"$tmp/broker.err" &
	broker_pid=$!
	for _ in $(seq 100); do grep -q '^listening' "$tmp/broker.out" && break; sleep 0.1; done
	port=$(sed -n 's/.* ports \([0-9]*\).*/\1/p' "$tmp/broker.out")
done

esc() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
{
	printf '{"machine": {"nproc": %s, "cpu": "%s", "kernel": "%s", "date": "%s", "commit": "%s"},\n' \
		"$(nproc)" "$(esc "$cpu")" "$(esc "$(uname -sr)")" "$(date -u +%FT%TZ)" \
		"$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	printf ' "cedar": %s,\n "dial": %s,\n "broker": %s,\n "relay": %s,\n "outbound": %s,\n "load": [' \
		"$(cat "$tmp/cedar.json")" "$(cat "$tmp/dial.json")" "$(cat "$tmp/bkbench.json")" \
		"$(cat "$tmp/relay.json")" "$(cat "$tmp/outbound.json")"
	sep=
	for l in "${loads[@]}"; do printf '%s%s' "$sep" "$l"; sep=', '; done
	printf ']}\n'
} >"$json"
{
	echo "libccb benchmarks — $(date -u +%F)"
	echo "machine: $(nproc) CPUs, $cpu, $(uname -sr)"
	echo
	cat "$tmp/table"
} >"$txt"
echo "wrote $json and $txt" >&2
