#!/usr/bin/env bash
# Build libccb in Release and run every benchmark, then write the figures as
# JSON (bench-results.json) and a short text table (bench-results.txt) with
# the machine they were measured on.
#
#   test/bench/run-benchmarks.sh [--full] [--out DIR] [--build DIR]
#                                [--collector HOST:PORT --collector-pid PID]
#
# Default: 19900 registrations (the most one broker holds under a 20,000
# open-file limit) through ccb_load against a freshly started `ccbctl broker`,
# held through one 30 s heartbeat round, with the full handshake (ECDH +
# AES-GCM); then the same count with --plaintext (keyless sessions; a broker
# that cannot accept them yet shows up as failed registrations). --full:
# 50000 and 100000 as well (spread over load processes by ccb_load itself;
# needs a high open-file limit). --collector: also run ccb_load --plaintext
# (19,900 registrations, same hold) against an HTCondor collector already
# running there (loopback; it must allow unauthenticated DAEMON), reading its
# /proc figures through --collector-pid, for a side-by-side table, then the
# ECDH + AES-GCM load against it too (it must also allow CLAIMTOBE condor@vm
# as DAEMON). Loopback only.
# With CCB_CONDOR_PREFIX set to an HTCondor install, also test/bench/proxy-bench.sh:
# HTCondor's ccb_proxy_bench through `ccbctl broker` and through a genuine
# condor_collector, next to iperf3 --bidir and bench_relay, in one run.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build="$src/build-release"
out="$PWD"
full=0
collector=
collector_pid=
while [ $# -gt 0 ]; do
	case "$1" in
	--full) full=1 ;;
	--collector) collector=$2; shift ;;
	--collector-pid) collector_pid=$2; shift ;;
	--out) out=$2; shift ;;
	--build) build=$2; shift ;;
	-h|--help) sed -n '2,23p' "$0"; exit 0 ;;
	*) echo "unknown argument: $1" >&2; exit 2 ;;
	esac
	shift
done
mkdir -p "$out"
json="$out/bench-results.json"
txt="$out/bench-results.txt"

cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench_cedar bench_dial bench_broker bench_relay bench_ecdh bench_hostile bench_revflood bench_outbound \
	ccb_load ccbctl >/dev/null
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
# A bench that exits non-zero still contributes what it printed (ccb_load
# exits 1 when some registrations failed, and says why in its table).
run() {
	local name=$1; shift
	echo "== $name: $*" | tee -a "$tmp/table" >&2
	"$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || echo "$name exited non-zero" | tee -a "$tmp/table" >&2
	grep -v '^{' "$tmp/$name.out" >>"$tmp/table" || true
	grep '^{' "$tmp/$name.out" | tail -1 >"$tmp/$name.json"
	[ -s "$tmp/$name.json" ] || echo null >"$tmp/$name.json"
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
: >"$tmp/table"
run cedar "$bench/bench_cedar"
run dial "$bench/bench_dial" -n 200
run bkbench "$bench/bench_broker" 10000
run relay "$bench/bench_relay" -t 2
run ecdh "$bench/bench_ecdh" 3000
run hostile "$bench/bench_hostile" -n 200 64 1000
run revflood "$bench/bench_revflood" -n 200
run outbound "$bench/bench_outbound" -t 2
echo null >"$tmp/proxy.json"
if [ -n "${CCB_CONDOR_PREFIX:-}" ]; then
	run proxy "$src/test/bench/proxy-bench.sh" --build "$build" --seconds 3 --runs 3
fi

# ccb_load against a real `ccbctl broker`. The plaintext run needs a broker
# that lets unauthenticated peers register (ALLOW_DAEMON = *) and does not
# require encryption. The load comes from a few loopback addresses with
# hundreds of handshakes in flight each: the per-source handshake cap
# (a defence against stalled peers) is lifted so that it measures capacity.
cat >"$tmp/brokercfg.json" <<JSON
{"CCB_SERVER_LISTEN": "127.0.0.1:0", "SEC_DEFAULT_AUTHENTICATION_METHODS": "CLAIMTOBE",
 "SEC_CLAIMTOBE_USER": "condor", "UID_DOMAIN": "vm", "ALLOW_DAEMON": "condor@vm",
 "ALLOW_READ": "*", "CCB_SERVER_MAX_HANDSHAKES_PER_SOURCE": 100000}
JSON
cat >"$tmp/brokercfg-plain.json" <<JSON
{"CCB_SERVER_LISTEN": "127.0.0.1:0", "SEC_DEFAULT_AUTHENTICATION": "OPTIONAL",
 "SEC_DEFAULT_ENCRYPTION": "OPTIONAL", "SEC_DEFAULT_INTEGRITY": "OPTIONAL",
 "SEC_DEFAULT_AUTHENTICATION_METHODS": "CLAIMTOBE", "UID_DOMAIN": "vm",
 "ALLOW_DAEMON": "*", "ALLOW_READ": "*", "CCB_SERVER_MAX_HANDSHAKES_PER_SOURCE": 100000}
JSON
start_broker() {
	"$ccbctl" broker -c "$1" >"$tmp/broker.out" 2>"$tmp/broker.err" &
	broker_pid=$!
	for _ in $(seq 100); do grep -q '^listening' "$tmp/broker.out" && break; sleep 0.1; done
	port=$(sed -n 's/.* ports \([0-9]*\).*/\1/p' "$tmp/broker.out")
	[ -n "$port" ] || { echo "ccbctl broker did not start" >&2; cat "$tmp/broker.err" >&2; exit 1; }
}
stop_broker() {
	kill "$broker_pid"; wait "$broker_pid" 2>/dev/null || true
	broker_pid=
}
sizes="19900"
[ "$full" = 1 ] && sizes="19900 50000 100000"
loads=()
for n in $sizes; do
	# A fresh broker for each run: RSS per registration stays comparable.
	start_broker "$tmp/brokercfg.json"
	run "load$n" "$bench/ccb_load" -b "127.0.0.1:$port" -c "$tmp/brokercfg.json" -n "$n" -H 35 -i 30 \
		-P "$broker_pid"
	loads+=("$(cat "$tmp/load$n.json")")
	stop_broker
done
# The same ECDH registrations with the load tool at SCHED_BATCH: on two
# shared CPUs its wake-ups otherwise preempt the broker, a cost a broker on
# a machine of its own does not pay (docs/performance.md).
start_broker "$tmp/brokercfg.json"
run loadbatch "$bench/ccb_load" --batch -b "127.0.0.1:$port" -c "$tmp/brokercfg.json" -n 19900 -H 5 \
	-i 30 -P "$broker_pid"
loads+=("$(cat "$tmp/loadbatch.json")")
stop_broker
start_broker "$tmp/brokercfg-plain.json"
run loadplain "$bench/ccb_load" --plaintext -b "127.0.0.1:$port" -n 19900 -H 35 -i 30 -P "$broker_pid"
loads+=("$(cat "$tmp/loadplain.json")")
stop_broker
if [ -n "$collector" ]; then
	run collector "$bench/ccb_load" --plaintext -b "$collector" -n 19900 -H 35 -i 30 \
		${collector_pid:+-P "$collector_pid"} --name COLLECTORLOAD
	loads+=("$(cat "$tmp/collector.json")")
	# Like for like: the same ECDH + AES-GCM client as against ccbctl broker
	# (the collector must allow CLAIMTOBE condor@vm as DAEMON). Its RSS
	# figure reuses what the plaintext run freed: restart it for a clean one.
	run collector_ecdh "$bench/ccb_load" -b "$collector" -c "$tmp/brokercfg.json" -n 19900 -H 35 \
		-i 30 ${collector_pid:+-P "$collector_pid"} --name COLLECTORLOAD
	loads+=("$(cat "$tmp/collector_ecdh.json")")
	run collector_batch "$bench/ccb_load" --batch -b "$collector" -c "$tmp/brokercfg.json" -n 19900 \
		-H 5 -i 30 ${collector_pid:+-P "$collector_pid"} --name COLLECTORLOAD
	loads+=("$(cat "$tmp/collector_batch.json")")
fi
# Requests through the broker, after registering 10,000.
start_broker "$tmp/brokercfg.json"
run loadreq "$bench/ccb_load" -b "127.0.0.1:$port" -c "$tmp/brokercfg.json" -n 10000 -H 5 -r 1000 \
	-P "$broker_pid"
loads+=("$(cat "$tmp/loadreq.json")")
stop_broker

esc() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
{
	printf '{"machine": {"nproc": %s, "cpu": "%s", "kernel": "%s", "date": "%s", "commit": "%s"},\n' \
		"$(nproc)" "$(esc "$cpu")" "$(esc "$(uname -sr)")" "$(date -u +%FT%TZ)" \
		"$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	printf ' "cedar": %s,\n "dial": %s,\n "broker": %s,\n "relay": %s,\n "ecdh": %s,\n "hostile": %s,\n "revflood": %s,\n "outbound": %s,\n "proxy": %s,\n "load": [' \
		"$(cat "$tmp/cedar.json")" "$(cat "$tmp/dial.json")" "$(cat "$tmp/bkbench.json")" \
		"$(cat "$tmp/relay.json")" "$(cat "$tmp/ecdh.json")" "$(cat "$tmp/hostile.json")" \
		"$(cat "$tmp/revflood.json")" "$(cat "$tmp/outbound.json")" "$(cat "$tmp/proxy.json")"
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
cat "$txt"
echo "wrote $json and $txt" >&2
