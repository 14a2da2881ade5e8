#!/usr/bin/env bash
# Sourced by test.sh. Installs Debian's Chromium when /usr/bin/chromium is missing (the browser SDK tests drive
# it through playwright-core; Playwright's own browser download is not used) and exports TESSERA_CHROMIUM.

if [ ! -x /usr/bin/chromium ]; then
  echo "chromium.sh: installing Debian's chromium"
  tessera_sudo=""
  if [ "$(id -u)" -ne 0 ]; then tessera_sudo="sudo -n"; fi
  # The lock timeout waits for another apt run on the same machine instead of failing at once.
  if ! $tessera_sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq \
    || ! $tessera_sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium >/dev/null; then
    echo "chromium.sh: could not install chromium with apt-get" >&2
    unset tessera_sudo
    return 1
  fi
  unset tessera_sudo
fi

export TESSERA_CHROMIUM=/usr/bin/chromium
