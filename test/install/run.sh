#!/usr/bin/env bash
# Install libccb into a scratch prefix, then check what a user gets:
#  1. a consumer built with CMake's find_package(ccb), and one with pkg-config;
#  2. the installed ccbctl runs;
#  3. one man page per sub-command (and ccbctl(1)), renderable;
#  4. the broker's systemd unit (and systemd-analyze verify, when available);
#  5. the examples build against the install, with find_package and with
#     pkg-config, and work end to end: the installed `ccbctl broker`,
#     listener_example registered with it, dial_example pinging through it.
# Usage: test/install/run.sh [BUILD_DIR]   (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
case $build in /*) ;; *) build=$here/$build ;; esac
prefix=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$prefix"
}
trap cleanup EXIT
passed=0
ok() { passed=$((passed + 1)); }
fail() { echo "install check FAILED: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(cd "$prefix" && find . -name 'libccb.so*' | head -1 | xargs dirname)
test -n "$libdir" || fail "libccb.so not installed"
export LD_LIBRARY_PATH="$prefix/$libdir"

# 0. the installed libccb.so exports only the public ccb_* functions
so=$(find "$prefix/$libdir" -name 'libccb.so.*.*.*' | head -1)
test -n "$so" || fail "versioned libccb.so not installed"
"$here/test/install/check-symbols.sh" "$so" "$prefix/include" >/dev/null || fail "exported symbols of $so"
test -f "$prefix/include/ccb/version.h" || fail "ccb/version.h not installed"
ok

# 1. consumers; the shared-library ones link neither OpenSSL nor jansson
no_private_deps() {
	if readelf -d "$1" | grep NEEDED | grep -Eq 'libssl|libcrypto|libjansson'; then
		fail "$1 links OpenSSL or jansson directly: $(readelf -d "$1" | grep NEEDED)"
	fi
}
! grep -q 'OpenSSL\|JANSSON' "$prefix/$libdir/cmake/ccb/ccbTargets.cmake" ||
	fail "ccbTargets.cmake references OpenSSL or jansson"
cmake -S "$here/test/install" -B "$prefix/consumer-build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer-build" >/dev/null
"$prefix/consumer-build/consumer" | grep -q '^Command = 67$' || fail "find_package consumer"
no_private_deps "$prefix/consumer-build/consumer"
cmake -S "$here/test/install" -B "$prefix/consumer-static" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
	-DCONSUMER_STATIC=ON >/dev/null
cmake --build "$prefix/consumer-static" >/dev/null
"$prefix/consumer-static/consumer" | grep -q '^Command = 67$' || fail "find_package static consumer"
readelf -d "$prefix/consumer-static/consumer" | grep NEEDED | grep -q libccb && fail "static consumer needs libccb.so"
ok
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
test -z "$(pkg-config --print-requires libccb)" || fail "libccb.pc has Requires"
cc -o "$prefix/consumer-pc" "$here/test/install/consumer.c" $(pkg-config --cflags --libs libccb)
"$prefix/consumer-pc" | grep -q 'timed out' || fail "pkg-config consumer"
no_private_deps "$prefix/consumer-pc"
ok

# 2. ccbctl
ccbctl=$prefix/bin/ccbctl
test -x "$ccbctl" || fail "ccbctl not installed"
"$ccbctl" --help >"$prefix/help.txt" || fail "ccbctl --help exits non-zero"
grep -q '^usage: ccbctl COMMAND' "$prefix/help.txt" || fail "ccbctl --help output"
ok

# 3. man pages: one per sub-command that --help lists
mandir=$prefix/share/man/man1
test -f "$mandir/ccbctl.1" || fail "ccbctl.1 not installed"
cmds=$(awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}' "$prefix/help.txt")
test -n "$cmds" || fail "no sub-commands in ccbctl --help"
for c in $cmds; do
	test -f "$mandir/ccbctl-$c.1" || fail "man page ccbctl-$c.1 not installed"
	grep -q '^\.SH "*EXIT STATUS' "$mandir/ccbctl-$c.1" || fail "ccbctl-$c.1 lacks EXIT STATUS"
done
if command -v groff >/dev/null; then
	for f in "$mandir"/*.1; do
		w=$(groff -man -ww -z "$f" 2>&1) || fail "groff $f"
		test -z "$w" || fail "groff warnings for $f: $w"
	done
fi
ok

# 4. systemd unit
unit=$(ls "$prefix"/lib/systemd/system/ccb-broker.service 2>/dev/null || true)
test -n "$unit" || fail "ccb-broker.service not installed"
grep -q '^ExecStart=/.*/ccbctl broker -c /etc/ccb/broker.json$' "$unit" || fail "unit ExecStart"
grep -q '^Restart=on-failure$' "$unit" || fail "unit Restart"
grep -q '^LimitNOFILE=20000$' "$unit" || fail "unit LimitNOFILE"
grep -q '^NoNewPrivileges=yes$' "$unit" || fail "unit hardening"
if command -v systemd-analyze >/dev/null; then
	# verify with ExecStart pointing at the scratch install
	sed "s|^ExecStart=[^ ]*|ExecStart=$ccbctl|" "$unit" >"$prefix/ccb-broker.service"
	out=$(MANPATH="$prefix/share/man" systemd-analyze verify "$prefix/ccb-broker.service" 2>&1) ||
		fail "systemd-analyze verify: $out"
	if printf '%s\n' "$out" | grep -q 'ccb-broker.service'; then
		fail "systemd-analyze verify: $out"
	fi
fi
"$ccbctl" config -c "$prefix/share/doc/libccb/examples/broker.json" >/dev/null ||
	fail "example broker.json does not pass ccbctl config"
ok

# 5. examples: build with find_package and with pkg-config, then run them
ex=$prefix/share/doc/libccb/examples
cmake -S "$ex" -B "$prefix/examples-build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/examples-build" >/dev/null
cc -std=c11 -Wall -Wextra -Werror -o "$prefix/dial-pc" "$ex/dial_example.c" $(pkg-config --cflags --libs libccb)
cc -std=c11 -Wall -Wextra -Werror -pthread -o "$prefix/listener-pc" "$ex/listener_example.c" $(pkg-config --cflags --libs libccb)
ok

# wait_line FILE PATTERN: up to 20 s for a line, printed on stdout
wait_line() {
	for _ in $(seq 200); do
		if grep -m1 "$2" "$1" 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	return 1
}
cat >"$prefix/broker.json" <<EOF
{"CCB_SERVER_LISTEN": "127.0.0.1:0", "SEC_DEFAULT_AUTHENTICATION_METHODS": "CLAIMTOBE",
 "UID_DOMAIN": "vm", "ALLOW_DAEMON": "*", "ALLOW_READ": "*"}
EOF
"$ccbctl" broker -c "$prefix/broker.json" >"$prefix/broker.out" 2>&1 &
pids+=($!)
line=$(wait_line "$prefix/broker.out" '^listening ') || fail "broker did not start: $(cat "$prefix/broker.out")"
port=${line##* ports }
port=${port%%,*}
cat >"$prefix/listener.json" <<EOF
{"CCB_ADDRESS": "127.0.0.1:$port", "SEC_DEFAULT_AUTHENTICATION_METHODS": "CLAIMTOBE",
 "UID_DOMAIN": "vm", "ALLOW_READ": "*"}
EOF
"$prefix/examples-build/listener_example" "$prefix/listener.json" >"$prefix/listener.out" 2>&1 &
pids+=($!)
sinful=$(wait_line "$prefix/listener.out" '^<.*CCBID=') || fail "listener_example did not register: $(cat "$prefix/listener.out")"
echo '{"SEC_DEFAULT_AUTHENTICATION_METHODS": "CLAIMTOBE", "UID_DOMAIN": "vm"}' >"$prefix/client.json"
"$prefix/examples-build/dial_example" "$prefix/client.json" "$sinful" >"$prefix/dial.out" 2>&1 ||
	fail "dial_example: $(cat "$prefix/dial.out")"
grep -q '^READ access ALLOWED$' "$prefix/dial.out" || fail "dial_example output: $(cat "$prefix/dial.out")"
"$prefix/dial-pc" "$prefix/client.json" "$sinful" >/dev/null 2>&1 || fail "pkg-config dial_example"
"$ccbctl" probe -c "$prefix/client.json" "$sinful" >"$prefix/probe.out" 2>&1 ||
	fail "ccbctl probe: $(cat "$prefix/probe.out")"
ok

echo "install check: $passed passed, 0 failed"
