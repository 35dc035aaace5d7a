#!/usr/bin/env bash
# One set-up for `npm start`, `npm test` and `npm run bench`: system packages, node modules, build.
# Idempotent and quiet when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

# fuse: fusermount (clearing a mount whose process died); libfuse2: the bench's fuse-native baseline
apt_packages=(libfuse2 fuse rsync) # rsync: the tests copy trees in and out of mounts (rsync -aX, and -aH in the POSIX suite)
# --- native core (native/): build prerequisites of the transport and the FUSE session ---
apt_packages+=(libfabric-dev libfuse3-dev cmake g++ pkg-config)
# --- end native core ---
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "fffs setup: missing system packages (${missing[*]}); install them as root" >&2
    exit 1
  fi
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "fffs setup: installing ${missing[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# node modules: install when absent or older than the lockfile / manifest.
if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ] || { [ -f package-lock.json ] && [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  echo "fffs setup: installing node modules" >&2
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
fi

# --- native core (native/): build the addons when missing or older than their sources ---
for addon in native/build/Release/fffs_native.node native/build/Release/fffs_fuse.node; do
  if [ ! -f "$addon" ] || [ -n "$(find native/src native/CMakeLists.txt -newer "$addon" -print -quit)" ]; then
    echo "fffs setup: building the native core" >&2
    bash scripts/build-native.sh
    break
  fi
done
# --- end native core ---

npm run --silent build
