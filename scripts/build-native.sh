#!/usr/bin/env bash
# Builds the native addons (native/ → native/build/Release/: fffs_native.node, the transport;
# fffs_fuse.node, the FUSE session; fffs_disk.node, the log's page-cache and O_DIRECT helpers)
# with cmake-js, offline, against the Node headers of the running node (npm's nodedir or /usr).
# Clear messages when a prerequisite is missing; quiet on success.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null || { echo "fffs build-native: '$1' not found (apt-get install $2)" >&2; exit 1; }; }
need cmake cmake
need g++ g++
need pkg-config pkg-config
pkg-config --exists 'libfabric >= 1.9' || { echo "fffs build-native: libfabric development files not found (apt-get install libfabric-dev)" >&2; exit 1; }
pkg-config --exists 'fuse3 >= 3.10' || { echo "fffs build-native: libfuse 3 development files not found (apt-get install libfuse3-dev)" >&2; exit 1; }

nodedir="${npm_config_nodedir:-}"
if [ -z "$nodedir" ]; then
  for d in "$(dirname "$(dirname "$(command -v node)")")" /usr /usr/local; do
    if [ -f "$d/include/node/node_api.h" ]; then nodedir="$d"; break; fi
  done
fi
args=(compile --directory native --out native/build --log-level error)
[ -n "$nodedir" ] && args+=(--CDCMAKE_JS_INC="$nodedir/include/node")
log="$(mktemp)"
if ! npx --no-install cmake-js "${args[@]}" >"$log" 2>&1; then
  cat "$log" >&2; rm -f "$log"
  echo "fffs build-native: build failed" >&2
  exit 1
fi
rm -f "$log"
