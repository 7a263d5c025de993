#!/usr/bin/env bash
# Runs CMD… with the shells and terminal tools the CLI's tests drive: zsh and fish (the
# completion scripts are tested in each, beside bash) and script(1) (the pseudo-terminal
# tests). Installed with apt-get when absent, so those tests run (never skip) in CI.
#
#   scripts/with-shells.sh CMD…
#
# Composes with the other wrappers (scripts/with-chromium.sh, with-postgres.sh, with-keyring.sh).
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: scripts/with-shells.sh CMD…" >&2
  exit 2
fi

missing=()
command -v zsh >/dev/null 2>&1 || missing+=(zsh)
command -v fish >/dev/null 2>&1 || missing+=(fish)
command -v script >/dev/null 2>&1 || missing+=(bsdutils)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_=()
  [ "$(id -u)" -eq 0 ] || sudo_=(sudo)
  echo "with-shells: installing ${missing[*]} (apt-get)" >&2
  "${sudo_[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing[@]}" >&2
fi
exec "$@"
