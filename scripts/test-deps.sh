#!/usr/bin/env bash
# Installs what the tests need besides Go modules: the Debian Python
# clients used by the e2e tests (seed-style vendor clients), Chromium for
# the browser tests, PostgreSQL for the monitor's SQL sink (the tests start
# their own server in a temp dir), and the Node STOMP client from
# e2e/node/package-lock.json. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(python3-websocket python3-requests python3-websockets python3-aiohttp chromium postgresql)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "test-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -d e2e/node/node_modules/@stomp/stompjs ] || [ e2e/node/package-lock.json -nt e2e/node/node_modules ]; then
  echo "test-deps: npm ci in e2e/node"
  (cd e2e/node && npm ci --no-audit --no-fund --loglevel=error)
fi
