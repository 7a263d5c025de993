#!/usr/bin/env bash
# Runs CMD… with Debian's Chromium at /usr/bin/chromium, for the browser tests
# (playwright-core drives it; no browser is ever downloaded by playwright), with a font
# so the screenshots can be read:
#
#   scripts/with-chromium.sh CMD…        e.g. scripts/with-chromium.sh npx vitest run test/hosted-browser.test.ts
#
# - Installed with apt-get when absent (the machine may have only node and npm).
# - CMD gets AGENT_AUTH_TEST_CHROMIUM, the browser's path; the browser tests fail (never
#   skip) without it. The exit status is CMD's.
# Composes with the other wrappers: scripts/with-chromium.sh scripts/with-postgres.sh CMD…
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: scripts/with-chromium.sh CMD…" >&2
  exit 2
fi

chromium=/usr/bin/chromium
if [ ! -x "$chromium" ]; then
  sudo_=()
  [ "$(id -u)" -eq 0 ] || sudo_=(sudo)
  echo "with-chromium: installing chromium (apt-get)" >&2
  "${sudo_[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends chromium fonts-liberation >&2
fi

export AGENT_AUTH_TEST_CHROMIUM="$chromium"
exec "$@"
