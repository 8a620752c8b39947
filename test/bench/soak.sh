#!/usr/bin/env bash
# Soak: keep N registrations heartbeating and requests flowing against a
# freshly started `ccbctl broker` for DURATION seconds, print the broker's fd
# count and RSS at intervals, and fail if they grow beyond a small slack
# after warm-up (fds: +20; RSS: +10% and at least 8 MiB).
#
#   test/bench/soak.sh [DURATION_S (default 120)] [N (default 2000)] [BUILD_DIR]
#
# Loopback only. Exit 0 when stable, 1 when something grew or failed.
set -euo pipefail

duration=${1:-120}
n=${2:-2000}
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${3:-$src/build}
ccbctl="$build/bin/ccbctl/ccbctl"
load="$build/test/bench/ccb_load"
interval=$(( duration / 12 )); [ "$interval" -lt 2 ] && interval=2
[ -x "$ccbctl" ] && [ -x "$load" ] || { echo "build first ($build)" >&2; exit 2; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
tmp=$(mktemp -d /tmp/ccb-soak.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/cfg.json" <<JSON
{"CCB_SERVER_LISTEN": "127.0.0.1:0", "SEC_DEFAULT_AUTHENTICATION_METHODS": "CLAIMTOBE",
 "SEC_CLAIMTOBE_USER": "condor", "UID_DOMAIN": "vm", "ALLOW_DAEMON": "condor@vm",
 "ALLOW_READ": "*", "CCB_SERVER_REQUEST_TIMEOUT": 10}
JSON
"$ccbctl" broker -c "$tmp/cfg.json" >"$tmp/broker.out" 2>"$tmp/broker.err" &
broker=$!
pids+=("$broker")
for _ in $(seq 100); do grep -q '^listening' "$tmp/broker.out" && break; sleep 0.1; done
port=$(sed -n 's/.* ports \([0-9]*\).*/\1/p' "$tmp/broker.out")
[ -n "$port" ] || { echo "broker did not start" >&2; cat "$tmp/broker.err" >&2; exit 1; }

# Long-lived registrations, heartbeating every 2 s, for the whole run.
"$load" -b "127.0.0.1:$port" -c "$tmp/cfg.json" -n "$n" -H "$duration" -i 2 >"$tmp/hold.out" 2>&1 &
hold=$!
pids+=("$hold")
# Churn: short-lived registrations with request round trips, again and again.
(
	end=$(( $(date +%s) + duration ))
	while [ "$(date +%s)" -lt "$end" ]; do
		"$load" -b "127.0.0.1:$port" -c "$tmp/cfg.json" -n 50 -H 1 -r 200 -p 1 >>"$tmp/churn.out" 2>&1 || echo "churn run failed" >>"$tmp/churn.err"
	done
) &
pids+=("$!")

sample() {
	local fds rss
	fds=$(ls "/proc/$broker/fd" | wc -l)
	rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$broker/status")
	echo "$fds $rss"
}
start=$(date +%s)
base_fds=; base_rss=; max_fds=0; max_rss=0
printf '%8s %8s %10s\n' "t (s)" "fds" "RSS (kB)"
while :; do
	sleep "$interval"
	kill -0 "$broker" 2>/dev/null || { echo "broker died" >&2; exit 1; }
	t=$(( $(date +%s) - start ))
	read -r fds rss < <(sample)
	printf '%8d %8d %10d\n' "$t" "$fds" "$rss"
	# Baseline once warm (registrations all in: 25% of the run).
	if [ -z "$base_fds" ] && [ "$t" -ge $(( duration / 4 )) ]; then
		base_fds=$fds; base_rss=$rss
	elif [ -n "$base_fds" ]; then
		[ "$fds" -gt "$max_fds" ] && max_fds=$fds
		[ "$rss" -gt "$max_rss" ] && max_rss=$rss
	fi
	[ "$t" -ge "$duration" ] && break
done
wait "$hold" || true
grep -E '^(registered|ALIVE|requests)' "$tmp/hold.out" || true
churn_runs=$(grep -c '^requests' "$tmp/churn.out" || true)
echo "churn: $churn_runs load runs with requests; $(grep -c . "$tmp/churn.err" 2>/dev/null || echo 0) failed"
fail=0
if [ -n "$base_fds" ]; then
	slack_rss=$(( base_rss / 10 )); [ "$slack_rss" -lt 8192 ] && slack_rss=8192
	echo "baseline: $base_fds fds, $base_rss kB; max after: $max_fds fds, $max_rss kB"
	[ "$max_fds" -gt $(( base_fds + 20 )) ] && { echo "FAIL: broker fds grew" >&2; fail=1; }
	[ "$max_rss" -gt $(( base_rss + slack_rss )) ] && { echo "FAIL: broker RSS grew" >&2; fail=1; }
fi
[ -s "$tmp/churn.err" ] && { echo "FAIL: churn load runs failed" >&2; fail=1; }
grep -q "registered *$n of $n" "$tmp/hold.out" || { echo "FAIL: not all $n registrations held" >&2; cat "$tmp/hold.out" >&2; fail=1; }
[ "$fail" = 0 ] && echo "soak: stable"
exit "$fail"
