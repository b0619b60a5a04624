#!/usr/bin/env bash
# Installs the Debian packages this project builds and tests with, if any are
# missing. Idempotent and quiet when everything is already there.
# Usage: scripts/install-deps.sh             the project's build and test packages
#        scripts/install-deps.sh PKG...      just these (used by install-test-tools.sh)
# If a package cannot be installed it stops with one line naming it.
set -euo pipefail

packages=(
  build-essential pkg-config clang
  libmicrohttpd-dev libjansson-dev libnats-dev libsodium-dev libcurl4-gnutls-dev
  zlib1g-dev libzstd-dev libdeflate-dev libcmocka-dev libgnutls28-dev
  python3 nats-server prometheus systemd groff-base chromium
)
[ $# -gt 0 ] && packages=("$@")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing missing packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "install-deps: not root and no sudo: install as root: apt-get install ${missing[*]}" >&2
    exit 1
  }
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || echo "install-deps: apt-get update failed; trying the package lists at hand" >&2
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
  # Name the package that is the problem: try them one by one.
  for p in "${missing[@]}"; do
    if ! $SUDO apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1; then
      echo "install-deps: cannot install the Debian package '$p' (apt-get install $p fails)" >&2
      exit 1
    fi
  done
fi
