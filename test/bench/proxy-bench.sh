#!/usr/bin/env bash
# Relay throughput side by side, in one run, on loopback: HTCondor's own
# ccb_proxy_bench through `ccbctl broker` and through a genuine
# condor_collector acting as CCB broker, next to the baselines it is compared
# with (iperf3 --bidir, bench_relay's direct blaster) and bench_relay through
# the same `ccbctl broker`.
#
#   CCB_CONDOR_PREFIX=/path/to/condor test/bench/proxy-bench.sh \
#       [--seconds N] [--runs N] [--build DIR] [--json FILE]
#
# CCB_CONDOR_PREFIX: an HTCondor install with sbin/condor_collector and
# libexec/ccb_proxy_bench (nothing of HTCondor is part of this repository).
# Without it the script says so and exits 77 (skipped). iperf3 is optional
# (its row is skipped when it is not on PATH). --build: a libccb build
# directory with bin/ccbctl/ccbctl and test/bench/bench_relay (default
# build-release; built here when missing). --runs N repeats the whole set N
# times (the cases alternate, so slow drift of the machine's load hits them
# alike) and prints every run and the median of each case.
#
# Per case: aggregate MiB/s (both directions at once, each direction's rate as
# its receiver saw it) and the CPU seconds per GiB moved of the blasting ends
# and of the relay process (broker or collector), from rusage and /proc.
# Ratios: ours/collector (ccb_proxy_bench through each broker), ours/iperf3
# and ours/direct blaster (ccb_proxy_bench through `ccbctl broker` over each
# baseline). Security: CLAIMTOBE with encryption and integrity off on every
# side, so that both brokers do the same control work; the relay itself never
# touches crypto. Output: a text table, then one JSON line (--json FILE: also
# written there).
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build="$src/build-release"
seconds=5
runs=1
json_out=
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) seconds=$2; shift ;;
	--runs) runs=$2; shift ;;
	--build) build=$2; shift ;;
	--json) json_out=$2; shift ;;
	-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "proxy-bench: unknown argument: $1" >&2; exit 2 ;;
	esac
	shift
done

prefix=${CCB_CONDOR_PREFIX:-}
if [ -z "$prefix" ] || [ ! -x "$prefix/sbin/condor_collector" ] ||
	[ ! -x "$prefix/libexec/ccb_proxy_bench" ]; then
	echo "proxy-bench: skipped: set CCB_CONDOR_PREFIX to an HTCondor install with" \
		"sbin/condor_collector and libexec/ccb_proxy_bench (now: '${prefix}')"
	exit 77
fi
ccbctl="$build/bin/ccbctl/ccbctl"
bench_relay="$build/test/bench/bench_relay"
if [ ! -x "$ccbctl" ] || [ ! -x "$bench_relay" ]; then
	cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build "$build" -j"$(nproc)" --target ccbctl bench_relay >/dev/null
fi
proxy_bench="$prefix/libexec/ccb_proxy_bench"
iperf3=$(command -v iperf3 || true)

tmp=$(mktemp -d /tmp/ccb-proxy-bench.XXXXXX)
chmod 755 "$tmp"
broker_pid=
collector_pid=
iperf_pid=
cleanup() {
	local p
	for p in $broker_pid $collector_pid $iperf_pid; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$tmp"
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	local p lo
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
	while :; do
		p=$((10000 + RANDOM % (lo - 10000)))
		ss -Htln "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
	done
}

# CPU seconds (user + system) a process has used so far, from /proc.
proc_cpu() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

port_broker=$(free_port)
port_coll=$(free_port)
while [ "$port_coll" = "$port_broker" ]; do port_coll=$(free_port); done
port_iperf=$(free_port)

# --------------------------------------------------------------- configs
mkdir -p "$tmp/condor"/{log,spool,lock,run,execute}
cat >"$tmp/condor/condor_config" <<EOF
RELEASE_DIR = $prefix
BIN = \$(RELEASE_DIR)/bin
SBIN = \$(RELEASE_DIR)/sbin
LIB = \$(RELEASE_DIR)/lib
LIBEXEC = \$(RELEASE_DIR)/libexec
LOCAL_DIR = $tmp/condor
LOG = \$(LOCAL_DIR)/log
SPOOL = \$(LOCAL_DIR)/spool
LOCK = \$(LOCAL_DIR)/lock
RUN = \$(LOCAL_DIR)/run
EXECUTE = \$(LOCAL_DIR)/execute
CONDOR_IDS = $(id -u).$(id -g)
CONDOR_ADMIN =
MAIL = /bin/true
CONDOR_HOST = 127.0.0.1
COLLECTOR_HOST = 127.0.0.1:$port_coll
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = False
ENABLE_IPV6 = False
USE_SHARED_PORT = False
ENABLE_CCB_SERVER = True
CCB_SERVER_STREAMING = True
ALLOW_READ = *
ALLOW_WRITE = *
ALLOW_DAEMON = *
ALLOW_ADMINISTRATOR = *
SEC_DEFAULT_AUTHENTICATION_METHODS = CLAIMTOBE
SEC_CLIENT_AUTHENTICATION_METHODS = CLAIMTOBE
SEC_DEFAULT_ENCRYPTION = NEVER
SEC_DEFAULT_INTEGRITY = NEVER
SEC_CLIENT_ENCRYPTION = NEVER
SEC_CLIENT_INTEGRITY = NEVER
UID_DOMAIN = ccbbench
TRUST_DOMAIN = ccbbench
EOF
cat >"$tmp/broker.json" <<EOF
{"CCB_SERVER_LISTEN": "127.0.0.1:$port_broker", "ALLOW_READ": "*", "ALLOW_WRITE": "*",
 "ALLOW_DAEMON": "*", "ALLOW_ADMINISTRATOR": "*",
 "SEC_DEFAULT_AUTHENTICATION_METHODS": "CLAIMTOBE", "SEC_CLIENT_AUTHENTICATION_METHODS": "CLAIMTOBE",
 "SEC_DEFAULT_ENCRYPTION": "NEVER", "SEC_DEFAULT_INTEGRITY": "NEVER",
 "SEC_CLIENT_ENCRYPTION": "NEVER", "SEC_CLIENT_INTEGRITY": "NEVER",
 "UID_DOMAIN": "ccbbench", "TRUST_DOMAIN": "ccbbench"}
EOF

# --------------------------------------------------------------- brokers
"$ccbctl" broker -c "$tmp/broker.json" >"$tmp/broker.out" 2>"$tmp/broker.err" &
broker_pid=$!
(cd "$tmp/condor" && CONDOR_CONFIG="$tmp/condor/condor_config" \
	exec "$prefix/sbin/condor_collector" -f -p "$port_coll" >"$tmp/condor/log/collector.stdout" 2>&1) &
collector_pid=$!
for _ in $(seq 150); do
	grep -q '^listening' "$tmp/broker.out" 2>/dev/null &&
		ss -Htln "sport = :$port_coll" 2>/dev/null | grep -q . && break
	sleep 0.1
done
grep -q '^listening' "$tmp/broker.out" ||
	{ echo "proxy-bench: ccbctl broker did not start" >&2; cat "$tmp/broker.err" >&2; exit 1; }
ss -Htln "sport = :$port_coll" | grep -q . ||
	{ echo "proxy-bench: condor_collector did not listen" >&2; tail -n 20 "$tmp/condor/log/CollectorLog" >&2; exit 1; }

# --------------------------------------------------------------- cases
# Each case appends "case mibs ends_cpu_s_per_gib relay_cpu_s_per_gib" to $tmp/rows
# (cpu "-" when not measured).
TIMEFORMAT='%U %S'

per_gib() { # cpu_seconds mib_per_s -> CPU seconds per GiB moved
	awk -v c="$1" -v m="$2" -v s="$seconds" 'BEGIN { g = m * s / 1024; if (g > 0) printf "%.3f", c / g; else print "-" }'
}

case_iperf3() {
	[ -n "$iperf3" ] || return 0
	{ time "$iperf3" -s -1 -p "$port_iperf" -B 127.0.0.1 >/dev/null 2>&1; } 2>"$tmp/iperf-server.time" &
	iperf_pid=$!
	for _ in $(seq 50); do ss -Htln "sport = :$port_iperf" | grep -q . && break; sleep 0.1; done
	local mibs cpu
	{ time "$iperf3" -c 127.0.0.1 -p "$port_iperf" --bidir -t "$seconds" -J >"$tmp/iperf.json" 2>&1; } \
		2>"$tmp/iperf-client.time" || { echo "iperf3 failed" >&2; cat "$tmp/iperf.json" >&2; }
	wait "$iperf_pid" 2>/dev/null || true
	iperf_pid=
	# bits per second received by each side, summed
	mibs=$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
e = j["end"]
print("%.1f" % ((e["sum_received"]["bits_per_second"] + e["sum_received_bidir_reverse"]["bits_per_second"]) / 8 / 1048576))
' "$tmp/iperf.json" 2>/dev/null || echo 0)
	cpu=$(cat "$tmp/iperf-server.time" "$tmp/iperf-client.time" | awk '{ s += $1 + $2 } END { print s }')
	echo "iperf3-bidir $mibs $(per_gib "$cpu" "$mibs") -" >>"$tmp/rows"
}

case_direct() { # bench_relay's direct blaster and its local splice relay, 256 KiB buffers
	"$bench_relay" -t "$seconds" -s 262144 >"$tmp/local.out" 2>&1 || true
	grep '^{' "$tmp/local.out" | python3 -c '
import json, sys
j = json.loads(sys.stdin.readline())
for c in j["cases"]:
    name = {"direct": "direct-blaster", "relay-splice": "bench_relay-local-splice"}.get(c["mode"])
    if not name:
        continue
    r = c["relay_cpu_s_per_gib"]
    print(name, "%.1f" % (c["a_to_b_mibs"] + c["b_to_a_mibs"]), "%.3f" % c["ends_cpu_s_per_gib"],
          "%.3f" % r if r >= 0 else "-")
' >>"$tmp/rows"
}

case_proxy_bench() { # name port pid
	local name=$1 port=$2 pid=$3 c0 c1 mibs ends relay
	c0=$(proc_cpu "$pid")
	{ time CONDOR_CONFIG="$tmp/condor/condor_config" timeout -s KILL $((seconds + 60)) \
		"$proxy_bench" "<127.0.0.1:$port>" "$seconds" >"$tmp/pb.out" 2>&1; } 2>"$tmp/pb.time" ||
		{ echo "proxy-bench: ccb_proxy_bench through $name failed:" >&2; cat "$tmp/pb.out" >&2; }
	c1=$(proc_cpu "$pid")
	mibs=$(sed -n 's/^ *aggregate *: *\([0-9.]*\) MiB.*/\1/p' "$tmp/pb.out")
	[ -n "$mibs" ] || mibs=0
	ends=$(awk '{ print $1 + $2 }' "$tmp/pb.time")
	relay=$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')
	echo "ccb_proxy_bench-$name $mibs $(per_gib "$ends" "$mibs") $(per_gib "$relay" "$mibs")" >>"$tmp/rows"
}

case_bench_relay_broker() {
	local c0 c1 mibs ends relay
	c0=$(proc_cpu "$broker_pid")
	"$bench_relay" --broker "127.0.0.1:$port_broker" -c "$tmp/broker.json" -t "$seconds" \
		>"$tmp/br.out" 2>&1 || { echo "proxy-bench: bench_relay --broker failed:" >&2; cat "$tmp/br.out" >&2; }
	c1=$(proc_cpu "$broker_pid")
	mibs=$(grep '^{' "$tmp/br.out" | python3 -c '
import json, sys
j = json.loads(sys.stdin.readline())
print("%.1f %.3f" % (j["req_to_target_mibs"] + j["target_to_req_mibs"], j.get("ends_cpu_s_per_gib", -1)))
' 2>/dev/null || echo "0 -1")
	read -r mibs ends <<<"$mibs"
	relay=$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')
	echo "bench_relay-ccbctl-broker $mibs $(awk -v e="$ends" 'BEGIN { if (e >= 0) printf "%.3f", e; else print "-" }') $(per_gib "$relay" "$mibs")" >>"$tmp/rows"
}

echo "proxy-bench: $(nproc) CPUs, $(uname -sr), $(CONDOR_CONFIG=/dev/null "$prefix/bin/condor_config_val" -version 2>/dev/null | head -n 1 || echo "HTCondor ?"), ${seconds} s per case, $runs run(s)"
for run in $(seq "$runs"); do
	: >"$tmp/rows"
	case_iperf3
	case_direct
	case_proxy_bench ccbctl-broker "$port_broker" "$broker_pid"
	case_proxy_bench collector "$port_coll" "$collector_pid"
	case_bench_relay_broker
	sed "s/^/$run /" "$tmp/rows" >>"$tmp/all"
done

# --------------------------------------------------------------- report
python3 - "$tmp/all" "$seconds" "$runs" "${json_out:-}" <<'PY'
import json, statistics, sys
path, seconds, runs, json_out = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rows = {}
order = []
for line in open(path):
    run, name, mibs, ends, relay = line.split()
    if name not in rows:
        rows[name] = []
        order.append(name)
    f = lambda v: None if v == "-" else float(v)
    rows[name].append((float(mibs), f(ends), f(relay)))
def med(name, i):
    v = [r[i] for r in rows.get(name, []) if r[i] is not None]
    return statistics.median(v) if v else None
def spread(name):
    v = [r[0] for r in rows.get(name, [])]
    return (min(v), max(v)) if v else (None, None)
fmt = lambda v, p=3: "-" if v is None else ("%.*f" % (p, v))
print("%-28s %12s %18s %14s %15s" % ("case", "MiB/s (med)", "min-max", "ends CPU s/GiB", "relay CPU s/GiB"))
for n in order:
    lo, hi = spread(n)
    print("%-28s %12s %18s %14s %15s" % (n, fmt(med(n, 0), 1), "%s-%s" % (fmt(lo, 0), fmt(hi, 0)),
                                         fmt(med(n, 1)), fmt(med(n, 2))))
ours, coll = med("ccb_proxy_bench-ccbctl-broker", 0), med("ccb_proxy_bench-collector", 0)
ip, direct = med("iperf3-bidir", 0), med("direct-blaster", 0)
ratio = lambda a, b: a / b if a and b else None
res = {"bench": "proxy", "seconds": seconds, "runs": runs,
       "cases": {n: {"mibs_median": med(n, 0), "mibs_min": spread(n)[0], "mibs_max": spread(n)[1],
                     "ends_cpu_s_per_gib": med(n, 1), "relay_cpu_s_per_gib": med(n, 2)} for n in order},
       "ours_over_collector": ratio(ours, coll), "ours_over_iperf3": ratio(ours, ip),
       "ours_over_direct_blaster": ratio(ours, direct),
       "collector_over_iperf3": ratio(coll, ip),
       "bench_relay_broker_over_direct_blaster": ratio(med("bench_relay-ccbctl-broker", 0), direct)}
print("ccb_proxy_bench: ours/collector %s, ours/iperf3 %s, ours/direct blaster %s (collector/iperf3 %s;"
      " bench_relay --broker/direct blaster %s)" % (
      fmt(res["ours_over_collector"], 2), fmt(res["ours_over_iperf3"], 2),
      fmt(res["ours_over_direct_blaster"], 2), fmt(res["collector_over_iperf3"], 2),
      fmt(res["bench_relay_broker_over_direct_blaster"], 2)))
line = json.dumps(res, separators=(",", ":"))
print(line)
if json_out:
    open(json_out, "w").write(line + "\n")
PY
