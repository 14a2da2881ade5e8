#!/usr/bin/env bash
# Sourced by test.sh. Installs tests/sdk's npm packages (the official Segment and RudderStack SDKs, esbuild,
# playwright-core) when node_modules is missing or was installed from another package-lock.json, and exports
# TESSERA_SDK_DIR for tests/Tessera.Sdk.Tests. Fast when already installed: one hash of the lock file.

tessera_sdk_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tests/sdk" && pwd)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node.sh: node/npm missing; installing Debian's nodejs and npm"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

tessera_sdk_lock_hash="$(sha256sum "$tessera_sdk_dir/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$tessera_sdk_dir/node_modules/.tessera-lock-hash" 2>/dev/null)" != "$tessera_sdk_lock_hash" ]; then
  echo "node.sh: npm ci in tests/sdk"
  # No install scripts: nothing here needs one (esbuild finds its binary in its platform package), and a
  # script that downloads something would fail on machines without general internet access.
  if ! (cd "$tessera_sdk_dir" && CI=true npm ci --ignore-scripts --no-audit --no-fund --loglevel=error </dev/null); then
    echo "node.sh: npm ci failed in $tessera_sdk_dir" >&2
    return 1
  fi
  echo "$tessera_sdk_lock_hash" > "$tessera_sdk_dir/node_modules/.tessera-lock-hash"
fi

export TESSERA_SDK_DIR="$tessera_sdk_dir"
unset tessera_sdk_dir tessera_sdk_lock_hash
