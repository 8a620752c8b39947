#!/usr/bin/env bash
# libccb's main job on one machine, as far as it is built: today that is the
# CEDAR/ClassAd layer, shown by decoding a CCB registration that real
# HTCondor 25.14 daemons exchanged (testvectors S1). Broker, listener and dial
# join this script as they land: a broker on 127.0.0.1, a listener registered
# with it, a dial through it, and the broker's JSON status.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/cmake/install-deps.sh"
cmake -S "$here" -B "$here/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$here/build" -j "$(nproc)" --target ccbctl >/dev/null
capture="$here/../shared/testvectors/S1-claimtobe-plain/streams.json"
if [ ! -f "$capture" ]; then
	echo "quickstart: no capture at $capture (it ships beside this repository)" >&2
	exit 1
fi
echo "== a condor_master registering with a collector's CCB server (CCB_REGISTER, ALIVE, forwarded CCB_REQUESTs):"
"$here/build/bin/ccbctl/ccbctl" decode --conn 1 "$capture"
