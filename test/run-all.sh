#!/usr/bin/env bash
# Build libccb and run the whole test suite through ctest; exits non-zero on
# any failure. Installs the Debian 12 packages it needs when they are missing.
#
#   test/run-all.sh                          plain build (-Werror)
#   test/run-all.sh --sanitize address,undefined
#   test/run-all.sh --sanitize thread
#   test/run-all.sh --fuzz SECONDS           build the libFuzzer targets with
#                                            clang + ASan/UBSan, run each one
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
sanitize=""
fuzz_seconds=""
while [ $# -gt 0 ]; do
	case "$1" in
	--sanitize) sanitize="$2"; shift 2 ;;
	--fuzz) fuzz_seconds="$2"; shift 2 ;;
	-h|--help) sed -n '2,11p' "$0"; exit 0 ;;
	*) echo "run-all.sh: unknown option $1" >&2; exit 2 ;;
	esac
done

"$here/cmake/install-deps.sh" ${fuzz_seconds:+--fuzz}

jobs=$(nproc)
if [ -n "$fuzz_seconds" ]; then
	build="$here/build-fuzz"
	CC=clang-14 cmake -S "$here" -B "$build" -G Ninja -DCCB_WERROR=ON -DCCB_FUZZ=ON \
		-DCCB_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$build" -j "$jobs"
	status=0
	for exe in "$build"/test/fuzz/fuzz_*; do
		name=$(basename "$exe"); name=${name#fuzz_}
		corpus="$build/corpus/$name"
		mkdir -p "$corpus"
		cp -n "$here/test/fuzz/corpus/$name/"* "$corpus/" 2>/dev/null || true
		echo "== fuzz_$name for ${fuzz_seconds}s"
		if ! (cd "$build" && "$exe" -max_total_time="$fuzz_seconds" -max_len=65536 \
			-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$corpus" 2>&1 | tail -n 12); then
			status=1
		fi
		if ls "$build"/crash-* "$build"/leak-* "$build"/timeout-* >/dev/null 2>&1; then
			echo "fuzz_$name found a failing input:" >&2
			ls "$build"/crash-* "$build"/leak-* "$build"/timeout-* 2>/dev/null >&2
			status=1
		fi
	done
	echo "fuzz: $([ $status = 0 ] && echo 0 failed || echo 1 failed)"
	exit $status
fi

build="$here/build${sanitize:+-$(echo "$sanitize" | tr ',' '-')}"
cmake -S "$here" -B "$build" -G Ninja -DCCB_WERROR=ON ${sanitize:+-DCCB_SANITIZE=$sanitize} \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$jobs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
ctest --test-dir "$build" --output-on-failure -j "$jobs" -V
