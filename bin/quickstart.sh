#!/usr/bin/env bash
# libccb's main job on one machine, on 127.0.0.1 only:
#   1. a CCB broker (`ccbctl broker`),
#   2. a listener registered with it (`ccbctl listen`), which prints the
#      sinful a daemon behind NAT would advertise: its own command port plus
#      its CCB contact, a form genuine HTCondor tools accept,
#   3. condor_ping's question sent to that sinful through the broker, by
#      connection reversal and then by streaming (the broker relays),
#   4. the broker's JSON status, with HTCondor's CCB* counter names,
#   5. the listener's status, itself asked through CCB.
# Everything uses CLAIMTOBE so that it runs without keys; see docs/config.md
# for TOKEN, SSL and FS. The processes stop when the script ends.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/cmake/install-deps.sh"
cmake -S "$here" -B "$here/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$here/build" -j "$(nproc)" --target ccbctl >/dev/null
ccbctl="$here/build/bin/ccbctl/ccbctl"

work=$(mktemp -d /tmp/ccb-quickstart-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# Wait (up to 20 s) for a line matching $2 in file $1; print it.
wait_line() {
	for _ in $(seq 200); do
		if line=$(grep -m1 -e "$2" "$1" 2>/dev/null); then
			echo "$line"
			return 0
		fi
		sleep 0.1
	done
	echo "quickstart: timed out waiting for '$2' in $1:" >&2
	cat "$1" >&2
	return 1
}

cat >"$work/broker.json" <<EOF
{
  "CCB_SERVER_LISTEN": "127.0.0.1:0",
  "CCB_RECONNECT_FILE": "$work/reconnect",
  "SEC_DEFAULT_AUTHENTICATION_METHODS": "CLAIMTOBE",
  "UID_DOMAIN": "quickstart",
  "ALLOW_DAEMON": "condor@quickstart"
}
EOF

echo "== 1. a CCB broker on 127.0.0.1"
"$ccbctl" broker -c "$work/broker.json" >"$work/broker.out" 2>"$work/broker.err" &
pids+=($!)
line=$(wait_line "$work/broker.out" '^listening ') || { cat "$work/broker.err" >&2; exit 1; }
echo "   $line"
port=${line##* }

cat >"$work/listen.json" <<EOF
{
  "CCB_ADDRESS": "127.0.0.1:$port",
  "CCB_LISTENER_NAME": "quickstart daemon",
  "PRIVATE_NETWORK_NAME": "quickstart-net",
  "SEC_DEFAULT_AUTHENTICATION_METHODS": "CLAIMTOBE",
  "SEC_CLAIMTOBE_USER": "condor",
  "UID_DOMAIN": "quickstart",
  "ALLOW_READ": "*"
}
EOF
echo "== 2. a listener registered with it; the sinful to advertise:"
"$ccbctl" listen -c "$work/listen.json" >"$work/listen.out" 2>"$work/listen.err" &
pids+=($!)
sinful=$(wait_line "$work/listen.out" 'CCBID=')
echo "   $sinful"

cat >"$work/client.json" <<'EOF'
{
  "SEC_CLIENT_AUTHENTICATION_METHODS": "CLAIMTOBE",
  "SEC_CLAIMTOBE_USER": "alice",
  "UID_DOMAIN": "quickstart"
}
EOF
echo "== 3a. condor_ping's question through CCB (the listener connects back to us):"
"$ccbctl" ping -c "$work/client.json" --level READ "$sinful"
echo "== 3b. the same by streaming (the broker relays; end-to-end security through it):"
"$ccbctl" ping -c "$work/client.json" --level READ --streaming "$sinful"
echo "== 3c. from the listener's private network: straight to its command port, no CCB:"
sed 's/"UID_DOMAIN"/"PRIVATE_NETWORK_NAME": "quickstart-net", "UID_DOMAIN"/' \
	"$work/client.json" >"$work/near.json"
"$ccbctl" ping -c "$work/near.json" --level READ "$sinful"

echo "== 4. the broker's status:"
"$ccbctl" status -c "$work/client.json" --broker "127.0.0.1:$port" --pretty
echo "== 5. the listener's status, asked through CCB:"
"$ccbctl" status -c "$work/client.json" --listener "$sinful" --pretty
