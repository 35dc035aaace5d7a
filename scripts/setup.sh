#!/usr/bin/env bash
# One set-up for `npm start`, `npm test` and `npm run bench`: what the host needs (commands and
# libraries; the missing ones from apt), node modules, the native addons and the TypeScript
# build, each only when missing or stale. Quiet and quick when everything is in place.
#
# It never removes or replaces an installed package: apt simulates the installation first, and a
# package whose installation would remove another (libfuse 3's `fuse3` and libfuse 2's `fuse`
# replace each other) is left out and named, with what it was for.
#
#   scripts/setup.sh [--test | --bench] [--dry-run | --packages]
#     --test, --bench  also what the tests / the benchmarks need
#     --dry-run        print what would be installed (apt's simulation), change nothing
#     --packages       print the packages of every need checked, one per line, and stop
set -euo pipefail
cd "$(dirname "$0")/.."

purpose=run
mode=setup
for arg in "$@"; do
  case "$arg" in
    --test) purpose=test ;;
    --bench) purpose=bench ;;
    --dry-run) mode=dry-run ;;
    --packages) mode=packages ;;
    *) echo "fffs setup: unknown argument '$arg' (--test, --bench, --dry-run, --packages)" >&2; exit 2 ;;
  esac
done

# What the host needs: "FOR|CHECK|PACKAGE|WHY". FOR: run (always), test, bench. CHECK: a command
# on PATH, a pkg-config module, or a shared library the dynamic linker knows.
needs=(
  "run|fuse-helper fusermount3|fuse3|unmounting, and mounts by a user other than root (libfuse 3's setuid helper)"
  "run|pkg-config fuse3|libfuse3-dev|building the FUSE session (native/src/fuse.cpp)"
  "run|pkg-config libfabric|libfabric-dev|building the transport (native/)"
  "run|command cmake|cmake|building native/"
  "run|command g++|g++|building native/"
  "run|command make|make|building native/ (cmake's generator)"
  "run|command pkg-config|pkg-config|finding libfuse 3 and libfabric"
  "test|command python3|python3|tests that use Python's file calls"
  "test|command ip|iproute2|the partition test (network namespaces)"
  "test|command rsync|rsync|tests that copy trees in and out of mounts (rsync -aX, -aH)"
  "test|command setfattr|attr|the README tour's test (setfattr)"
  "bench|library libfuse.so.2|libfuse2|the fs bench's baseline, a null file system on fuse-native (libfuse 2)"
  "bench|command iperf3|iperf3|the transport bench's baseline"
)

has() {
  local kind="$1" name="$2"
  case "$kind" in
    command) command -v "$name" >/dev/null 2>&1 ;;
    # Root mounts and unmounts without the helper; libfuse 2's fusermount clears a stale mount as well.
    fuse-helper) command -v "$name" >/dev/null 2>&1 || { [ "$(id -u)" -eq 0 ] && command -v fusermount >/dev/null 2>&1; } ;;
    pkg-config) command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$name" ;;
    library) { command -v ldconfig >/dev/null 2>&1 && ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null | grep -q "[[:space:]]$name[[:space:]]" ;;
  esac
}

wanted() {
  case "$1" in
    run) return 0 ;;
    test) [ "$purpose" != run ] ;; # the benchmarks run some of the tests' tools too
    bench) [ "$purpose" = bench ] ;;
  esac
}

missing=()
declare -A why=()
for need in "${needs[@]}"; do
  IFS='|' read -r for check pkg reason <<<"$need"
  if [ "$mode" = packages ]; then echo "$pkg"; continue; fi
  wanted "$for" || continue
  # shellcheck disable=SC2086 # CHECK is two words: kind and name
  has $check && continue
  missing+=("$pkg")
  why[$pkg]="$reason"
done
[ "$mode" = packages ] && exit 0

# apt's simulation of installing "$@" (no root needed, nothing changed).
simulate() { LC_ALL=C apt-get -s install --no-install-recommends "$@" 2>&1; }

# Fills install=() with the missing packages apt can install without removing anything; says
# why about each other one (refused: names what apt would remove).
plan() {
  install=()
  unknown=0
  local pkg out removed
  for pkg in "${missing[@]}"; do
    if ! out="$(simulate "$pkg")"; then
      unknown=1
      [ "$1" = final ] && echo "fffs setup: apt cannot install $pkg (for ${why[$pkg]}): $(echo "$out" | grep '^E:' | head -1)" >&2
      continue
    fi
    removed="$(echo "$out" | sed -n 's/^Remv \([^ ]*\).*/\1/p' | tr '\n' ' ')"
    if [ -n "$removed" ]; then
      [ "$1" = final ] && echo "fffs setup: not installing $pkg (needed for ${why[$pkg]}): apt would remove ${removed}to make room; install it yourself if you want that" >&2
      continue
    fi
    install+=("$pkg")
  done
  # Each alone is fine; together they might still conflict.
  if [ ${#install[@]} -gt 1 ] && simulate "${install[@]}" | grep -q '^Remv '; then
    [ "$1" = final ] && echo "fffs setup: installing ${install[*]} together would remove a package; not done: install them yourself" >&2
    install=()
  fi
}

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "fffs setup: missing: ${missing[*]} (Debian package names); install them with your system's package manager" >&2
    exit 1
  fi
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    if [ "$mode" = setup ] && ! command -v sudo >/dev/null; then
      echo "fffs setup: missing system packages (${missing[*]}); install them as root" >&2
      exit 1
    fi
    sudo_cmd=(sudo)
  fi
  plan first
  # Before installing, or when apt knows a package by no name (a fresh machine has no lists): fresh lists.
  if [ "$mode" = setup ] && { [ ${#install[@]} -gt 0 ] || [ "$unknown" = 1 ]; }; then
    "${sudo_cmd[@]}" apt-get update -qq
  fi
  plan final
  if [ "$mode" = dry-run ]; then
    if [ ${#install[@]} -gt 0 ]; then
      echo "fffs setup: would install ${install[*]}; apt's plan:"
      simulate "${install[@]}" | grep -E '^(Inst|Remv|Conf) ' || true
    else
      echo "fffs setup: would install nothing"
    fi
  elif [ ${#install[@]} -gt 0 ]; then
    echo "fffs setup: installing ${install[*]}" >&2
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${install[@]}" >/dev/null
  fi
fi
if [ "$mode" = dry-run ]; then
  [ ${#missing[@]} -eq 0 ] && echo "fffs setup: the host has everything fffs needs ($purpose)"
  exit 0
fi

# node modules: installed when absent or older than the lockfile / manifest.
if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ] || { [ -f package-lock.json ] && [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  echo "fffs setup: installing node modules" >&2
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
fi

# The native addons (when missing or older than their sources) and the TypeScript build (when
# any source, directory or config is newer than its stamp) are independent: both at once.
native_stale=0
for addon in native/build/Release/fffs_native.node native/build/Release/fffs_fuse.node native/build/Release/fffs_disk.node; do
  if [ ! -f "$addon" ] || [ -n "$(find native/src native/CMakeLists.txt -newer "$addon" -print -quit)" ]; then native_stale=1; fi
done
build_stamp=dist/.build-stamp
ts_stale=0
if [ ! -f "$build_stamp" ] || [ -n "$(find src bench tsconfig.json package.json -newer "$build_stamp" -print -quit)" ]; then ts_stale=1; fi

native_pid=
if [ "$native_stale" = 1 ]; then
  echo "fffs setup: building the native core" >&2
  bash scripts/build-native.sh &
  native_pid=$!
fi
if [ "$ts_stale" = 1 ]; then
  echo "fffs setup: building (tsc)" >&2
  touch_at="$(date +%s.%N)"
  npm run --silent build
  mkdir -p dist
  touch -d "@$touch_at" "$build_stamp" # the time the build started: an edit during it stays newer
fi
if [ -n "$native_pid" ]; then
  wait "$native_pid"
  # cmake relinks only an addon whose own sources changed: the others are current too, and say so.
  touch native/build/Release/fffs_native.node native/build/Release/fffs_fuse.node native/build/Release/fffs_disk.node
fi
