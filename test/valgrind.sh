#!/usr/bin/env bash
# Run the integration-style tests (test/broker, test/listener, test/dial and
# test/fault in its short mode) under valgrind memcheck on a plain build.
# Not part of .ci/run: it takes several minutes.
#
#   test/valgrind.sh [BUILD_DIR (default build-valgrind)]
#
# Exit 0 when every program passes with no memcheck error and no leak.
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-valgrind}
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 2
cmake --build "$build" -j"$(nproc)" >/dev/null || exit 2

logdir="$build/valgrind-logs"
mkdir -p "$logdir"
fail=0
unset CCB_FAULT_FULL
export CCBT_UNDER_VALGRIND=1
for t in "$build"/test/broker_test_* "$build"/test/listener_test_* "$build"/test/dial_test_* \
	 "$build"/test/fault_test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	start=$(date +%s)
	# Child processes (ccbctl) are not traced: they have their own tests.
	valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect --track-fds=no --trace-children=no \
		--log-file="$logdir/$name.log" "$t" >"$logdir/$name.out" 2>&1
	rc=$?
	errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$logdir/$name.log" | tail -1)
	printf '%-40s rc=%-3d memcheck errors=%-4s %4ds\n' "$name" "$rc" "${errs:-?}" $(( $(date +%s) - start ))
	[ "$rc" = 0 ] || fail=1
done
echo "logs: $logdir"
exit "$fail"
