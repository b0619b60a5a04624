#!/usr/bin/env bash
# Installs the Debian packages this project builds and tests with, if any are
# missing. Idempotent and quiet when everything is already there.
# Usage: scripts/install-deps.sh            (build + unit/integration tests)
set -euo pipefail

packages=(
  build-essential pkg-config clang
  libmicrohttpd-dev libjansson-dev libnats-dev libsodium-dev libcurl4-gnutls-dev
  zlib1g-dev libzstd-dev libcmocka-dev libgnutls28-dev
  python3 nats-server
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing missing packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
