#!/usr/bin/env bash
# Install libccb into a scratch prefix, then build a consumer against it with
# CMake's find_package(ccb) and with pkg-config, and run both.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
cmake -S "$here/test/install" -B "$prefix/consumer-build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer-build" >/dev/null
LD_LIBRARY_PATH="$prefix/lib" "$prefix/consumer-build/consumer" | grep -q '^Command = 67$'
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc -o "$prefix/consumer-pc" "$here/test/install/consumer.c" $(pkg-config --cflags --libs libccb)
LD_LIBRARY_PATH="$prefix/lib" "$prefix/consumer-pc" | grep -q 'timed out'
test -x "$prefix/bin/ccbctl"
echo "install check: 2 passed, 0 failed"
