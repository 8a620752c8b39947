#!/usr/bin/env bash
# libccb next to genuine HTCondor daemons and tools, in every role, on loopback.
#
#   test/interop/run.sh [--ccbctl PATH] [--setup NAME]... [--keep] [--list]
#
# HTCondor comes from CCB_CONDOR_PREFIX (an install with sbin/condor_master and
# bin/condor_ping), else from condor_master on PATH; with neither the suite says
# so and exits 77, which ctest reports as skipped. Nothing of HTCondor is part of
# this repository: build or install it yourself and point CCB_CONDOR_PREFIX at it.
#
# For each security setup the suite writes its own pools under a temporary
# directory (every address 127.0.0.1, ports chosen free):
#   pool A   condor_master + condor_collector, the collector being a CCB server
#   pool B   a condor_master registered with A's CCB (reachable only through it)
#   broker   `ccbctl broker`
#   pool C   a condor_master registered with `ccbctl broker`
#   pool D   a condor_master behind condor_shared_port, registered with `ccbctl broker`
#   inside   `ccbctl broker` as an inside CCB: CCB_OUTBOUND_NEXT_HOP = A's collector
#   pool F   a condor_master registered with the inside CCB (nested contact through A)
#   pool G   condor_master + condor_collector as an inside CCB of `ccbctl broker`
#   pool H   a condor_master registered with G's collector
# and runs these cells:
#   htcondor/condor_ping         reference: condor_ping through A's CCB to B
#   htcondor/condor_ping-stream  reference: the same, relayed by the collector
#   requester/collector          ccbctl ping through A's CCB to B (reversed)
#   requester/collector-stream   the same, relayed by the collector (streaming)
#   listener/condor_ping         condor_ping through A's CCB to `ccbctl listen`,
#                                with the sinful `ccbctl listen` prints
#   listener/condor_ping-stream  the same with TOOLS_ASSUME_FIREWALLS (relayed)
#   broker/register              C's master registers with `ccbctl broker`
#   broker/condor_ping           condor_ping through `ccbctl broker` to C
#   broker/condor_ping-stream    the same, relayed by `ccbctl broker`
#   broker/config_val            condor_config_val -addr through `ccbctl broker`
#   broker/shared_port           condor_ping through `ccbctl broker` to D's master
#                                (condor_shared_port registered, sock= routing)
#   broker/shared_port-stream    the same, relayed
#   broker/ccb_proxy_bench       HTCondor's ccb_proxy_bench relays through
#                                `ccbctl broker` (when the install has it)
#   broker/restart               SIGKILL and restart of `ccbctl broker`: C
#                                re-registers with its old CCBID and is reached
#   tunnel/inside-register       F's master gets a nested CCBID through A's collector
#   tunnel/condor_ping-stream    condor_ping (TOOLS_ASSUME_FIREWALLS) to F: one
#                                streaming request to the collector with CCBRoute,
#                                relayed by the inside `ccbctl broker`
#   tunnel/ccbctl-ping           `ccbctl ping` to F through the same tunnel
#   tunnel/entry-register        a genuine collector (pool G) as inside CCB registered
#                                with `ccbctl broker`; H's master behind it gets a
#                                nested CCBID through `ccbctl broker`
#   tunnel/entry-condor_ping     condor_ping to H: `ccbctl broker` validates and
#                                forwards CCBRoute to G's collector, which relays
#   outbound/requester           ccbctl ping --outbound through A's collector
#                                (CCB_OUTBOUND_PROXY) to `ccbctl broker`
#   outbound/broker              HTCondor's ccb_proxy_bench --outbound through
#                                `ccbctl broker` (skipped without libexec/ccb_proxy_bench)
#   outbound/broker-ttl0         the same with --ttl 0 through `ccbctl broker`
#                                forwarding to A's collector: refused with
#                                "outbound proxy TTL expired"
#   token/ccbctl-to-condor       (token setup) a token from `ccbctl token create`
#                                authenticates condor_ping to the collector
#   token/condor-to-ccbctl       (token setup) a token from condor_token_create
#                                passes `ccbctl token verify` and authenticates
#                                `ccbctl ping` to the collector
#
# Setups (--setup, default all):
#   plain          CLAIMTOBE; HTCondor's crypto list BLOWFISH, libccb's AES: no
#                  common method, so every libccb <-> HTCondor session is plaintext
#   blowfish       CLAIMTOBE + BLOWFISH, encryption and integrity off (secrets only)
#   blowfish-enc   CLAIMTOBE + BLOWFISH, encryption and integrity required
#   3des-enc       CLAIMTOBE + 3DES, encryption and integrity required
#   fs             FS + AES
#   token          IDTOKENS + AES (one pool signing key, tokens minted by both)
#   ssl            SSL + AES (CA-verified server certificates, anonymous clients)
#
# FS binds its session to the address the client dialed, which a relay changes,
# so FS through a streaming relay fails with HTCondor alone too (the reference
# cell shows it): in the fs setup the relayed cells to HTCondor targets are
# reported XFAIL when they fail and do not count as failures.
#
# Prints one line per cell and ends with "interop: N passed, N failed"; exit 0
# when every cell passed, 1 otherwise, 77 when no HTCondor was found.
set -uo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
ccbctl="$here/build/bin/ccbctl/ccbctl"
setups=()
keep=false
all_setups=(plain blowfish blowfish-enc 3des-enc fs token ssl)
while [ $# -gt 0 ]; do
	case "$1" in
	--ccbctl) ccbctl="$2"; shift 2 ;;
	--setup) setups+=("$2"); shift 2 ;;
	--keep) keep=true; shift ;;
	--list) printf '%s\n' "${all_setups[@]}"; exit 0 ;;
	-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "interop: unknown option $1" >&2; exit 2 ;;
	esac
done
[ ${#setups[@]} -gt 0 ] || setups=("${all_setups[@]}")

prefix=${CCB_CONDOR_PREFIX:-}
if [ -z "$prefix" ] && m=$(command -v condor_master 2>/dev/null); then
	prefix=$(dirname "$(dirname "$m")")
fi
if [ -z "$prefix" ] || [ ! -x "$prefix/sbin/condor_master" ] || [ ! -x "$prefix/bin/condor_ping" ]; then
	echo "interop: no HTCondor install found (set CCB_CONDOR_PREFIX to a prefix with" \
		"sbin/condor_master and bin/condor_ping); skipped"
	exit 77
fi
if [ ! -x "$ccbctl" ]; then
	echo "interop: no ccbctl at $ccbctl (build first, or --ccbctl PATH)" >&2
	exit 2
fi
for s in "${setups[@]}"; do
	case " ${all_setups[*]} " in *" $s "*) ;; *) echo "interop: unknown setup $s" >&2; exit 2 ;; esac
done

work=$(mktemp -d /tmp/ccbi.XXXXXX)
chmod 755 "$work"
passed=0
failed=0
failures=()

# ---------------------------------------------------------------- processes

# Every HTCondor process started here carries CONDOR_CONFIG=<its file> in its
# environment (daemons pass it on to their children): that finds them all.
condor_pids() {
	local cfg=$1 p
	for p in /proc/[0-9]*; do
		grep -qzx "CONDOR_CONFIG=$cfg" "$p/environ" 2>/dev/null && echo "${p#/proc/}"
	done
	return 0
}

stop_condor() {
	local cfg=$1 pids i
	pids=$(condor_pids "$cfg")
	[ -n "$pids" ] || return 0
	kill -TERM $pids 2>/dev/null
	for i in $(seq 50); do
		pids=$(condor_pids "$cfg")
		[ -n "$pids" ] || return 0
		sleep 0.2
	done
	kill -KILL $pids 2>/dev/null
	return 0
}

ccb_pids=()
stop_all() {
	local cfg p
	for p in "${ccb_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${ccb_pids[@]}"; do wait "$p" 2>/dev/null; done
	ccb_pids=()
	for cfg in "$work"/*/*/condor_config; do
		[ -f "$cfg" ] && stop_condor "$cfg"
	done
	return 0
}

cleanup() {
	stop_all
	if $keep || [ $failed -gt 0 ]; then
		echo "interop: files kept in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free TCP port below the kernel's ephemeral range (where no outgoing
# connection can take it between our pick and the daemon's bind).
free_port() {
	local p lo
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
	while :; do
		p=$((10000 + RANDOM % (lo - 10000)))
		if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
			echo "$p"
			return
		fi
	done
}

# wait_for SECONDS COMMAND...: true as soon as COMMAND succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	while [ $SECONDS -lt $deadline ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.3
	done
	"$@" >/dev/null 2>&1
}

# The first line of FILE matching PATTERN, waiting up to SECONDS.
wait_line() {
	local file=$1 pattern=$2 deadline=$((SECONDS + $3)) line
	while [ $SECONDS -lt $deadline ]; do
		if line=$(grep -m1 -e "$pattern" "$file" 2>/dev/null); then
			echo "$line"
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# ---------------------------------------------------------------- reporting

cell_log=""
cell() { # cell NAME COMMAND...: run one cell, its output in a log
	local name="$setup/$1" start=$SECONDS
	shift
	cell_log="$work/$setup/cells/${name//\//_}.log"
	mkdir -p "$(dirname "$cell_log")"
	if "$@" >"$cell_log" 2>&1; then
		passed=$((passed + 1))
		printf 'PASS  %-40s %3d s\n' "$name" $((SECONDS - start))
	else
		failed=$((failed + 1))
		failures+=("$name")
		printf 'FAIL  %-40s %3d s  (log: %s)\n' "$name" $((SECONDS - start)) "$cell_log"
		sed 's/^/      | /' "$cell_log" | tail -n 25
	fi
}

# xcell REASON NAME COMMAND...: a cell that genuine HTCondor fails too in this
# setup; a failure is reported as XFAIL with the reason, a pass as XPASS.
xcell() {
	local reason=$1 name="$setup/$2" start=$SECONDS
	shift 2
	cell_log="$work/$setup/cells/${name//\//_}.log"
	mkdir -p "$(dirname "$cell_log")"
	if "$@" >"$cell_log" 2>&1; then
		passed=$((passed + 1))
		printf 'XPASS %-40s %3d s\n' "$name" $((SECONDS - start))
	else
		printf 'XFAIL %-40s %3d s  (%s)\n' "$name" $((SECONDS - start)) "$reason"
	fi
}

skip_cell() {
	printf 'SKIP  %-40s (%s)\n' "$setup/$1" "$2"
}

# ---------------------------------------------------------------- configs

# Security knobs as HTCondor names them, per setup. $1: "condor" or "ccb"
# (libccb's side differs only in the plain setup's crypto list).
sec_knobs() {
	local side=$1 m crypto enc
	case "$setup" in
	plain) m=CLAIMTOBE; enc=NEVER; [ "$side" = condor ] && crypto=BLOWFISH || crypto=AES ;;
	blowfish) m=CLAIMTOBE; enc=NEVER; crypto=BLOWFISH ;;
	blowfish-enc) m=CLAIMTOBE; enc=REQUIRED; crypto=BLOWFISH ;;
	3des-enc) m=CLAIMTOBE; enc=REQUIRED; crypto=3DES ;;
	fs) m=FS; enc=REQUIRED; crypto=AES ;;
	token) m=IDTOKENS; enc=REQUIRED; crypto=AES ;;
	ssl) m=SSL; enc=REQUIRED; crypto=AES ;;
	esac
	local ctx
	for ctx in DEFAULT CLIENT; do
		echo "SEC_${ctx}_AUTHENTICATION=REQUIRED"
		echo "SEC_${ctx}_AUTHENTICATION_METHODS=$m"
		echo "SEC_${ctx}_ENCRYPTION=$enc"
		echo "SEC_${ctx}_INTEGRITY=$enc"
		echo "SEC_${ctx}_CRYPTO_METHODS=$crypto"
	done
	echo "UID_DOMAIN=ccbinterop"
	echo "TRUST_DOMAIN=ccbinterop"
	case "$setup" in
	token)
		echo "SEC_PASSWORD_DIRECTORY=$sd/passwords.d"
		echo "SEC_TOKEN_DIRECTORY=$sd/tokens.d"
		[ "$side" = condor ] && echo "SEC_TOKEN_SYSTEM_DIRECTORY=$sd/tokens.d"
		;;
	ssl)
		echo "AUTH_SSL_SERVER_CERTFILE=$sd/ssl/hostcert.pem"
		echo "AUTH_SSL_SERVER_KEYFILE=$sd/ssl/hostkey.pem"
		echo "AUTH_SSL_CLIENT_CAFILE=$sd/ssl/ca.pem"
		echo "AUTH_SSL_SERVER_CAFILE=$sd/ssl/ca.pem"
		echo "SSL_SKIP_HOST_CHECK=True"
		;;
	esac
}

# condor_pool NAME [KNOB=VALUE]...: a condor_config for a pool under $sd/NAME.
condor_pool() {
	local name=$1 d="$sd/$1" kv
	shift
	mkdir -p "$d"/{log,spool,execute,lock,run,etc}
	{
		cat <<EOF
RELEASE_DIR = $prefix
BIN = \$(RELEASE_DIR)/bin
SBIN = \$(RELEASE_DIR)/sbin
LIB = \$(RELEASE_DIR)/lib
LIBEXEC = \$(RELEASE_DIR)/libexec
LOCAL_DIR = $d
LOG = \$(LOCAL_DIR)/log
SPOOL = \$(LOCAL_DIR)/spool
EXECUTE = \$(LOCAL_DIR)/execute
LOCK = \$(LOCAL_DIR)/lock
RUN = \$(LOCAL_DIR)/run
ETC = \$(LOCAL_DIR)/etc
CONDOR_IDS = $(id -u).$(id -g)
CONDOR_ADMIN =
MAIL = /bin/true
PREEN =
CONDOR_HOST = 127.0.0.1
COLLECTOR_HOST = 127.0.0.1:$port_a
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = False
ENABLE_IPV6 = False
USE_SHARED_PORT = False
USE_PROCD = False
DISCARD_SESSION_KEYRING_ON_STARTUP = False
SEC_USE_FAMILY_SESSION = False
CCB_RECONNECT_TIME = 2
MASTER_UPDATE_INTERVAL = 5
ALLOW_READ = *
ALLOW_WRITE = *
ALLOW_DAEMON = *
ALLOW_ADMINISTRATOR = *
ALLOW_OWNER = *
ALLOW_NEGOTIATOR = *
ALLOW_CONFIG = *
ALLOW_ADVERTISE_MASTER = *
ALL_DEBUG = D_FULLDEBUG D_SECURITY D_NETWORK D_COMMAND
EOF
		sec_knobs condor | sed 's/=/ = /'
		for kv in "$@"; do echo "${kv/=/ = }"; done
	} >"$d/condor_config"
}

start_pool() { # start_pool NAME: its condor_master, in the background
	local d="$sd/$1"
	(cd "$d" && CONDOR_CONFIG="$d/condor_config" exec "$prefix/sbin/condor_master" -f \
		>"$d/log/master.stdout" 2>&1) &
}

# A pool's master sinful as its ad in pool A's collector publishes it, once it
# carries a CCBID (the master advertises a few seconds after it registered).
master_sinful() {
	local s
	s=$(tool "$prefix/bin/condor_status" -master -af Name MyAddress 2>/dev/null |
		awk -v n="pool$1@" 'index($1, n) == 1 { print $2 }')
	case "$s" in *CCBID=*) echo "$s" ;; *) return 1 ;; esac
}

# The CCBIDs a pool's master was given, one per registration, from its log.
master_ccbids() {
	sed -n 's/.*CCBListener: registered with CCB server .* as ccbid //p' "$sd/$1/log/MasterLog"
}

# ccb_json FILE [KNOB=VALUE]...: a libccb JSON config of the setup's security
# knobs plus these (a later knob replaces an earlier one of the same name).
ccb_json() {
	local file=$1 kv k v first=true
	local -A val=()
	local -a order=()
	shift
	for kv in $(sec_knobs ccb) "$@"; do
		k=${kv%%=*}
		[ -n "${val[$k]+set}" ] || order+=("$k")
		val[$k]=${kv#*=}
	done
	{
		echo "{"
		for k in "${order[@]}"; do
			v=${val[$k]}
			case "$v" in
			True|true) v=true ;;
			False|false) v=false ;;
			*[!0-9]*|"") v="\"$v\"" ;;
			esac
			$first || echo ","
			first=false
			printf '  "%s": %s' "$k" "$v"
		done
		echo
		echo "}"
	} >"$file"
}

tool() { # a HTCondor tool with pool A's config (a client outside the private networks)
	CONDOR_CONFIG="$sd/A/condor_config" "$@"
}

# ---------------------------------------------------------------- per-setup material

make_material() {
	case "$setup" in
	token)
		mkdir -p "$sd/passwords.d" "$sd/tokens.d"
		chmod 700 "$sd/passwords.d" "$sd/tokens.d"
		head -c 64 /dev/urandom >"$sd/passwords.d/POOL"
		chmod 600 "$sd/passwords.d/POOL"
		"$ccbctl" token create -c "$sd/ccb-client.json" --identity condor@ccbinterop \
			>"$sd/tokens.d/condor" || return 1
		chmod 600 "$sd/tokens.d/condor"
		;;
	ssl)
		mkdir -p "$sd/ssl"
		(
			cd "$sd/ssl" &&
			openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
				-subj "/CN=ccbinterop CA" &&
			openssl req -newkey rsa:2048 -nodes -keyout hostkey.pem -out host.csr \
				-subj "/CN=localhost" &&
			printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext &&
			openssl x509 -req -in host.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
				-out hostcert.pem -days 2 -extfile ext
		) >"$sd/ssl.log" 2>&1 || { cat "$sd/ssl.log"; return 1; }
		;;
	esac
	return 0
}

# ---------------------------------------------------------------- cells

c_requester() { # $1: extra ccbctl ping options
	local s
	s=$(master_sinful B) || { echo "pool B never registered with the collector's CCB"; return 1; }
	echo "target: $s"
	"$ccbctl" ping -c "$sd/ccb-client.json" --level READ $1 "$s"
}

listener_sinful=""
c_listener_start() {
	"$ccbctl" listen -c "$sd/ccb-listen.json" -v >"$sd/listen.out" 2>"$sd/listen.err" &
	ccb_pids+=($!)
	listener_sinful=$(wait_line "$sd/listen.out" 'CCBID=' 30) ||
		{ echo "ccbctl listen printed no sinful"; cat "$sd/listen.err"; return 1; }
	echo "ccbctl listen: $listener_sinful"
}

c_condor_ping() { # c_condor_ping SINFUL [ENV=VALUE...]
	local s=$1
	shift
	[ -n "$s" ] || { echo "no sinful to ping"; return 1; }
	echo "target: $s"
	env "$@" CONDOR_CONFIG="$sd/A/condor_config" "$prefix/bin/condor_ping" -addr "$s" \
		-table READ
	local rc=$?
	[ $rc = 0 ] || { echo "condor_ping exit $rc"; return 1; }
}

broker_start() {
	"$ccbctl" broker -c "$sd/ccb-broker.json" --debug --log "$sd/broker.log" \
		>>"$sd/broker.out" 2>>"$sd/broker.err" &
	broker_pid=$!
	ccb_pids+=($broker_pid)
	wait_for 15 grep -q "^listening .*$port_broker" "$sd/broker.out" ||
		{ echo "ccbctl broker did not start"; cat "$sd/broker.err"; return 1; }
}

c_broker_register() {
	broker_start || return 1
	start_pool C
	wait_for 60 master_sinful C || { echo "pool C's master never registered"; tail -n 40 "$sd/C/log/MasterLog"; return 1; }
	local s
	s=$(master_sinful C)
	echo "$s"
	case "$s" in *"CCBID=127.0.0.1:$port_broker"*) ;; *) echo "pool C's CCBID does not name ccbctl broker"; return 1 ;; esac
}

c_shared_port() {
	start_pool D
	wait_for 60 master_sinful D || { echo "pool D's master never registered"; tail -n 40 "$sd/D/log/MasterLog"; return 1; }
	master_sinful D
}

c_config_val() {
	local s out
	s=$(master_sinful C) || return 1
	out=$(tool "$prefix/bin/condor_config_val" -addr "$s" MASTER_NAME) || { echo "$out"; return 1; }
	echo "MASTER_NAME = $out"
	[ "$out" = poolC ]
}

# Tunnels (ccb-protocol.md §9.2-9.3): ccbctl broker as an inside CCB registered
# with pool A's genuine collector (CCB_OUTBOUND_NEXT_HOP), pool F's genuine
# master registered with it; its advertised CCBID must be nested through the
# collector.
c_tunnel_register() {
	"$ccbctl" broker -c "$sd/ccb-inside.json" --debug --log "$sd/inside.log" \
		>>"$sd/inside.out" 2>>"$sd/inside.err" &
	ccb_pids+=($!)
	wait_for 15 grep -q "^listening .*$port_inside" "$sd/inside.out" ||
		{ echo "the inside ccbctl broker did not start"; cat "$sd/inside.err"; return 1; }
	start_pool F
	wait_for 60 master_sinful F || { echo "pool F's master never registered"; tail -n 40 "$sd/F/log/MasterLog"; tail -n 20 "$sd/inside.log"; return 1; }
	local s
	s=$(master_sinful F)
	echo "$s"
	case "$s" in *"CCBID=127.0.0.1%3a$port_a"*"#"*"#"*|*"CCBID=127.0.0.1:$port_a"*"#"*"#"*) ;;
	*) echo "pool F's CCBID is not nested through the collector"; return 1 ;; esac
}

# The other way round: a genuine collector as the inside CCB (pool G, its
# CCB_OUTBOUND_NEXT_HOP = `ccbctl broker`), pool H's master registered with it.
# `ccbctl broker` is then the entry broker that validates and forwards CCBRoute.
c_tunnel_entry_register() {
	start_pool G
	wait_for 60 grep -q "registered with next-hop CCB" "$sd/G/log/CollectorLog" ||
		{ echo "G's collector never registered with ccbctl broker"; tail -n 30 "$sd/G/log/CollectorLog"; return 1; }
	start_pool H
	wait_for 90 master_sinful H || { echo "pool H's master never registered"; tail -n 40 "$sd/H/log/MasterLog"; return 1; }
	local s
	s=$(master_sinful H)
	echo "$s"
	case "$s" in *"CCBID=127.0.0.1%3a$port_broker"*"#"*"#"*|*"CCBID=127.0.0.1:$port_broker"*"#"*"#"*) ;;
	*) echo "pool H's CCBID is not nested through ccbctl broker"; return 1 ;; esac
}

c_tunnel_ccbctl() { # ccbctl ping (a nested contact is always streamed)
	local s
	s=$(master_sinful F) || { echo "pool F not registered"; return 1; }
	echo "target: $s"
	"$ccbctl" ping -c "$sd/ccb-client.json" --level READ "$s"
}

registrations_at_least() { # N POOL
	[ "$(master_ccbids "$2" | wc -l)" -ge "$1" ]
}

# HTCondor's own relay benchmark through `ccbctl broker`: it registers a
# target, asks for a streaming request and blasts both ways over the relay.
c_proxy_bench() {
	local bench="$prefix/libexec/ccb_proxy_bench"
	[ -x "$bench" ] || { echo "no $bench in this HTCondor install"; return 1; }
	tool "$bench" "<127.0.0.1:$port_broker>" 2 "$@"
}

c_outbound_requester() {
	# The target is `ccbctl broker` itself (a direct sinful). Not a CCB-routed
	# one: HTCondor 25.14's collector, dialing a CCB-routed target as an
	# outbound exit, registers CCB_REVERSE_CONNECT (69) a second time and
	# dies ("DaemonCore: Same command registered twice (id=69)").
	local s="<127.0.0.1:$port_broker>"
	echo "target: $s"
	"$ccbctl" ping -c "$sd/ccb-client.json" --level READ --outbound "127.0.0.1:$port_a" "$s" || return 1
	grep -q "dialing target" "$sd/A/log/CollectorLog" || { echo "the collector did not dial"; return 1; }
}

c_outbound_broker() { # $1: extra ccb_proxy_bench options; $2: broker port
	local out rc
	out=$(cd "$sd" && tool timeout -s KILL 60 "$prefix/libexec/ccb_proxy_bench" \
		"<127.0.0.1:$2>" 2 --outbound $1 2>&1)
	rc=$?
	echo "$out"
	return $rc
}

c_outbound_ttl0() {
	"$ccbctl" broker -c "$sd/ccb-forward.json" --debug --log "$sd/forward.log" \
		>>"$sd/forward.out" 2>>"$sd/forward.err" &
	ccb_pids+=($!)
	wait_for 15 grep -q "^listening .*$port_fwd" "$sd/forward.out" ||
		{ echo "forwarding ccbctl broker did not start"; cat "$sd/forward.err"; return 1; }
	c_outbound_broker "--ttl 0" "$port_fwd" && { echo "expected a refusal"; return 1; }
	grep -q "outbound TTL expired" "$sd/forward.log" || { echo "no TTL refusal in the log"; return 1; }
}

c_broker_restart() {
	local before after
	before=$(master_sinful C) || { echo "pool C not registered"; return 1; }
	kill -KILL "$broker_pid"
	wait "$broker_pid" 2>/dev/null
	sleep 1
	broker_start || return 1
	# C's master notices the dead broker, waits CCB_RECONNECT_TIME and
	# re-registers with its reconnect cookie; the old sinful works again.
	wait_for 60 registrations_at_least 2 C ||
		{ echo "pool C's master did not re-register"; tail -n 30 "$sd/C/log/MasterLog"; return 1; }
	echo "CCBIDs given to pool C's master:"
	master_ccbids C
	[ "$(master_ccbids C | sort -u | wc -l)" = 1 ] || { echo "the CCBID changed"; return 1; }
	c_condor_ping "$before"
}

c_token_ccbctl_to_condor() {
	local dir="$sd/tokens-alice"
	mkdir -p "$dir" && chmod 700 "$dir"
	"$ccbctl" token create -c "$sd/ccb-client.json" --identity alice@ccbinterop >"$dir/alice" || return 1
	chmod 600 "$dir/alice"
	local out
	out=$(CONDOR_CONFIG="$sd/A/condor_config" _CONDOR_SEC_TOKEN_DIRECTORY="$dir" \
		_CONDOR_SEC_TOKEN_SYSTEM_DIRECTORY="$dir" _CONDOR_SEC_PASSWORD_DIRECTORY="$sd/nonexistent" \
		"$prefix/bin/condor_ping" -type collector -table READ 2>&1)
	echo "$out"
	echo "$out" | grep -q 'alice@ccbinterop'
}

c_token_condor_to_ccbctl() {
	local dir="$sd/tokens-bob"
	mkdir -p "$dir" && chmod 700 "$dir"
	tool "$prefix/bin/condor_token_create" -identity bob@ccbinterop -key POOL >"$dir/bob" || return 1
	chmod 600 "$dir/bob"
	"$ccbctl" token verify -c "$sd/ccb-client.json" "$(cat "$dir/bob")" || return 1
	ccb_json "$sd/ccb-bob.json" "SEC_TOKEN_DIRECTORY=$dir" "SEC_PASSWORD_DIRECTORY=$sd/nonexistent"
	local out
	out=$("$ccbctl" ping -c "$sd/ccb-bob.json" --level READ "<127.0.0.1:$port_a>" 2>&1)
	echo "$out"
	echo "$out" | grep -q 'Identity: *bob@ccbinterop'
}

# ---------------------------------------------------------------- one setup

run_setup() {
	sd="$work/$setup"
	mkdir -p "$sd"
	port_a=$(free_port)
	port_broker=$(free_port)
	port_d=$(free_port)
	port_fwd=$(free_port)
	ccb_json "$sd/ccb-client.json"
	if ! make_material; then
		failed=$((failed + 1)); failures+=("$setup/setup")
		echo "FAIL  $setup/setup (key material)"
		return
	fi
	ccb_json "$sd/ccb-client.json"
	ccb_json "$sd/ccb-listen.json" "CCB_ADDRESS=127.0.0.1:$port_a" \
		"PRIVATE_NETWORK_NAME=ccbctl.private" "CCB_LISTENER_NAME=interop" "ALLOW_READ=*" \
		"CCB_HEARTBEAT_INTERVAL=30"
	ccb_json "$sd/ccb-broker.json" "CCB_SERVER_LISTEN=127.0.0.1:$port_broker" \
		"CCB_RECONNECT_FILE=$sd/broker.reconnect" "ALLOW_READ=*" "ALLOW_WRITE=*" \
		"ALLOW_DAEMON=*" "ALLOW_ADMINISTRATOR=*" "CCB_OUTBOUND_PROXY=true" \
		"CCB_OUTBOUND_TARGET_DENYLIST=::2"
	ccb_json "$sd/ccb-forward.json" "CCB_SERVER_LISTEN=127.0.0.1:$port_fwd" "ALLOW_READ=*" \
		"ALLOW_DAEMON=*" "CCB_OUTBOUND_NEXT_HOP=127.0.0.1:$port_a" \
		"CCB_OUTBOUND_TARGET_DENYLIST=::2"
	port_inside=$(free_port)
	ccb_json "$sd/ccb-inside.json" "CCB_SERVER_LISTEN=127.0.0.1:$port_inside" \
		"CCB_OUTBOUND_NEXT_HOP=127.0.0.1:$port_a" "ALLOW_READ=*" "ALLOW_WRITE=*" \
		"ALLOW_DAEMON=*" "ALLOW_ADMINISTRATOR=*"
	condor_pool F "DAEMON_LIST=MASTER" "MASTER_NAME=poolF" "CCB_ADDRESS=127.0.0.1:$port_inside" \
		"PRIVATE_NETWORK_NAME=poolF.private" "CCB_HEARTBEAT_INTERVAL=30"
	port_g=$(free_port)
	condor_pool G "DAEMON_LIST = MASTER, COLLECTOR" "COLLECTOR_HOST=127.0.0.1:$port_g" \
		"COLLECTOR_NAME=inside-$setup" "ENABLE_CCB_SERVER=True" "CCB_SERVER_STREAMING=True" \
		"CCB_OUTBOUND_NEXT_HOP=127.0.0.1:$port_broker"
	condor_pool H "DAEMON_LIST=MASTER" "MASTER_NAME=poolH" "CCB_ADDRESS=127.0.0.1:$port_g" \
		"PRIVATE_NETWORK_NAME=poolH.private" "CCB_HEARTBEAT_INTERVAL=30"
	condor_pool A "DAEMON_LIST = MASTER, COLLECTOR" "COLLECTOR_NAME=interop-$setup" \
		"ENABLE_CCB_SERVER=True" "CCB_SERVER_STREAMING=True" "CCB_OUTBOUND_PROXY=True" \
		"CCB_OUTBOUND_TARGET_DENYLIST=::2"
	condor_pool B "DAEMON_LIST=MASTER" "MASTER_NAME=poolB" "CCB_ADDRESS=127.0.0.1:$port_a" \
		"PRIVATE_NETWORK_NAME=poolB.private" "CCB_HEARTBEAT_INTERVAL=30"
	condor_pool C "DAEMON_LIST=MASTER" "MASTER_NAME=poolC" "CCB_ADDRESS=127.0.0.1:$port_broker" \
		"PRIVATE_NETWORK_NAME=poolC.private" "CCB_HEARTBEAT_INTERVAL=30"
	condor_pool D "DAEMON_LIST=MASTER" "MASTER_NAME=poolD" "CCB_ADDRESS=127.0.0.1:$port_broker" \
		"PRIVATE_NETWORK_NAME=poolD.private" "USE_SHARED_PORT=True" "SHARED_PORT_PORT=$port_d" \
		"DAEMON_SOCKET_DIR=$sd/D/run/sock" "CCB_HEARTBEAT_INTERVAL=30"

	start_pool A
	if ! wait_for 30 tool "$prefix/bin/condor_status" -collector -af Name; then
		failed=$((failed + 1)); failures+=("$setup/pool-A")
		echo "FAIL  $setup/pool-A: the collector did not answer"
		tail -n 30 "$sd/A/log/CollectorLog" "$sd/A/log/MasterLog" 2>/dev/null | sed 's/^/      | /'
		stop_all
		return
	fi
	start_pool B
	wait_for 60 master_sinful B

	# HTCondor with itself, for reference: condor_ping through the collector.
	# FS binds its channel to the address the client dialed, which a relay
	# changes: FS through any streaming relay fails in HTCondor too.
	local fs_relay=cell
	[ "$setup" = fs ] && fs_relay="xcell FS-through-a-relay-fails-in-HTCondor-too"
	cell htcondor/condor_ping c_condor_ping "$(master_sinful B)"
	$fs_relay htcondor/condor_ping-stream c_condor_ping "$(master_sinful B)" _CONDOR_TOOLS_ASSUME_FIREWALLS=True
	cell requester/collector c_requester ""
	$fs_relay requester/collector-stream c_requester --streaming
	cell listener/start c_listener_start
	cell listener/condor_ping c_condor_ping "$listener_sinful"
	$fs_relay listener/condor_ping-stream c_condor_ping "$listener_sinful" _CONDOR_TOOLS_ASSUME_FIREWALLS=True
	cell broker/register c_broker_register
	cell broker/condor_ping c_condor_ping "$(master_sinful C)"
	$fs_relay broker/condor_ping-stream c_condor_ping "$(master_sinful C)" _CONDOR_TOOLS_ASSUME_FIREWALLS=True
	cell broker/config_val c_config_val
	cell broker/shared_port-register c_shared_port
	cell broker/shared_port c_condor_ping "$(master_sinful D)"
	$fs_relay broker/shared_port-stream c_condor_ping "$(master_sinful D)" _CONDOR_TOOLS_ASSUME_FIREWALLS=True
	if [ -x "$prefix/libexec/ccb_proxy_bench" ]; then
		cell broker/ccb_proxy_bench c_proxy_bench
	else
		skip_cell broker/ccb_proxy_bench "no libexec/ccb_proxy_bench in this install"
	fi
	$fs_relay outbound/requester c_outbound_requester
	if [ -x "$prefix/libexec/ccb_proxy_bench" ]; then
		$fs_relay outbound/broker c_outbound_broker "" "$port_broker"
		cell outbound/broker-ttl0 c_outbound_ttl0
	else
		skip_cell outbound/broker "no $prefix/libexec/ccb_proxy_bench"
		skip_cell outbound/broker-ttl0 "no $prefix/libexec/ccb_proxy_bench"
	fi
	cell broker/restart c_broker_restart
	cell tunnel/inside-register c_tunnel_register
	$fs_relay tunnel/condor_ping-stream c_condor_ping "$(master_sinful F)" _CONDOR_TOOLS_ASSUME_FIREWALLS=True
	$fs_relay tunnel/ccbctl-ping c_tunnel_ccbctl
	cell tunnel/entry-register c_tunnel_entry_register
	$fs_relay tunnel/entry-condor_ping c_condor_ping "$(master_sinful H)" _CONDOR_TOOLS_ASSUME_FIREWALLS=True
	if [ "$setup" = token ]; then
		cell token/ccbctl-to-condor c_token_ccbctl_to_condor
		cell token/condor-to-ccbctl c_token_condor_to_ccbctl
	fi
	stop_all
}

echo "interop: HTCondor $(CONDOR_CONFIG=/dev/null "$prefix/bin/condor_config_val" -version 2>/dev/null | head -n 1)"
echo "interop: ccbctl $ccbctl; work directory $work"
for setup in "${setups[@]}"; do
	echo "== $setup"
	run_setup
done
if [ $failed -gt 0 ]; then
	echo "interop: failed cells: ${failures[*]}"
fi
echo "interop: $passed passed, $failed failed"
[ $failed = 0 ]
