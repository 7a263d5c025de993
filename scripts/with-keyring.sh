#!/usr/bin/env bash
# Runs CMD… inside a private D-Bus session with a real, unlocked Secret Service
# (gnome-keyring), so the keychain tests meet the system keychain as a desktop has it:
#
#   scripts/with-keyring.sh CMD…          e.g. scripts/with-keyring.sh npx vitest run
#
# - Debian's dbus, gnome-keyring and libsecret-tools (secret-tool, the reference Secret
#   Service client the tests check our items with) are installed with apt-get when absent.
# - The keyring's files and the bus's runtime folder live in a temporary folder removed at
#   exit: nothing of the user's own keychain is read or written.
# - DISPLAY is unset, or gnome-keyring may open an unlock prompt and wait for a click.
# - The keyring is unlocked with a throwaway password given on stdin (never on argv).
# - AGENT_AUTH_TEST_KEYRING=1 tells the tests that a real keychain is there: without it
#   the keychain tests fail rather than skip (CI must not pass without a keychain).
# Composes with the other wrappers: scripts/with-postgres.sh scripts/with-keyring.sh CMD…
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: scripts/with-keyring.sh CMD…" >&2
  exit 2
fi

if [ "${AGENT_AUTH_TEST_KEYRING:-}" = "1" ] && [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  exec "$@" # already inside one
fi

missing=()
command -v dbus-run-session >/dev/null || missing+=(dbus)
command -v gnome-keyring-daemon >/dev/null || missing+=(gnome-keyring)
command -v secret-tool >/dev/null || missing+=(libsecret-tools)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "with-keyring: installing ${missing[*]} (apt-get)" >&2
  sudo_=()
  [ "$(id -u)" -eq 0 ] || sudo_=(sudo)
  "${sudo_[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends dbus gnome-keyring libsecret-tools >&2
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/agent-auth-keyring.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/data" "$tmp/runtime"
chmod 700 "$tmp/runtime"

# The inner script: start the keyring daemon on the session bus, unlocked, then run CMD.
inner='
set -euo pipefail
password="$(head -c 24 /dev/urandom | base64)"
# --unlock reads the password from stdin; the daemon prints its environment (control socket).
eval "$(printf "%s" "$password" | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL
unset password
export AGENT_AUTH_TEST_KEYRING=1
# Ready when the Secret Service answers a search (the collection may take a moment).
for _ in $(seq 1 50); do
  if secret-tool search --all agent-auth-probe ready >/dev/null 2>&1 || [ $? -eq 1 ]; then break; fi
  sleep 0.1
done
"$@"
'
env -u DISPLAY -u WAYLAND_DISPLAY -u DBUS_SESSION_BUS_ADDRESS \
  XDG_DATA_HOME="$tmp/data" XDG_RUNTIME_DIR="$tmp/runtime" \
  dbus-run-session -- bash -c "$inner" with-keyring "$@"
