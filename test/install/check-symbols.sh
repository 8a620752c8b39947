#!/usr/bin/env bash
# Check what libccb.so exports: every defined dynamic symbol must be a
# function or object named ccb_* (never ccb__*, the internal prefix) that is
# declared in one of the public headers under the given include dirs.
# Usage: test/install/check-symbols.sh LIBCCB_SO INCLUDE_DIR...
set -euo pipefail
lib=$1
shift
test -f "$lib" || { echo "check-symbols: $lib not found" >&2; exit 1; }
headers=()
for d in "$@"; do
	for h in "$d"/ccb/*.h; do headers+=("$h"); done
done
test ${#headers[@]} -gt 0 || { echo "check-symbols: no headers in $*" >&2; exit 1; }
# Names declared CCB_API in the headers.
declared=$(sed -n 's/^CCB_API .*\b\(ccb_[A-Za-z0-9_]*\)(.*/\1/p' "${headers[@]}" | sort -u)
exported=$(nm -D --defined-only "$lib")
bad=0
n=0
while read -r _ type name; do
	case $type in
	[TtWwVvDdBbRrGgSs]) ;;
	*) continue ;;
	esac
	# Symbols the toolchain adds to every shared object.
	case $name in _init | _fini | _edata | _end | __bss_start) continue ;; esac
	n=$((n + 1))
	case $name in
	ccb__*) echo "exported internal symbol: $name ($type)" >&2; bad=1; continue ;;
	ccb_*) ;;
	*) echo "exported symbol without the ccb_ prefix: $name ($type)" >&2; bad=1; continue ;;
	esac
	if ! grep -Fqx -- "$name" <<<"$declared"; then
		echo "exported symbol not declared CCB_API in a public header: $name ($type)" >&2
		bad=1
	fi
done < <(awk 'NF == 3' <<<"$exported")
# The other way round: every declared function is exported.
missing=$(comm -23 <(printf '%s\n' "$declared") <(awk 'NF == 3 {print $3}' <<<"$exported" | sort -u))
for name in $missing; do
	echo "declared CCB_API but not exported: $name" >&2
	bad=1
done
test $n -gt 0 || { echo "check-symbols: no exported symbols in $lib" >&2; exit 1; }
test $bad -eq 0 || exit 1
echo "check-symbols: $n exported symbols of $lib, all public"
