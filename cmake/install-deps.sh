#!/usr/bin/env bash
# Install the Debian 12 packages libccb needs to build and test, if missing.
#   --fuzz   also clang-14 and its libFuzzer runtime
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config libssl-dev libjansson-dev libcunit1-dev)
if [ "${1:-}" = "--fuzz" ]; then
	pkgs+=(clang-14 libclang-rt-14-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
