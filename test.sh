#!/usr/bin/env bash
# Runs Tessera's whole test suite on a fresh machine: installs and starts what the tests need (PostgreSQL,
# npm packages, Chromium, an SMTP sink), checks formatting, runs every test project, and prints
# "N passed, M failed" at the end. Exit code 0 only when every check passed.
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# Each file in scripts/deps installs and starts one dependency when missing, and exports how to reach it.
for dep in scripts/deps/*.sh; do
  [ -e "$dep" ] || continue
  echo "== dependency: $(basename "$dep" .sh)"
  # shellcheck source=/dev/null
  source "$dep"
done

# The test cluster belongs to the tests alone: schemas left by earlier runs (one per test class or server) are
# dropped, so the cluster does not grow run after run. One schema per transaction (all in one ran out of
# max_locks_per_transaction), and only while no other client is connected: another run on this machine uses them.
pg_port=$(sed -n 's/.*Port=\([0-9]*\).*/\1/p' <<< "$TESSERA_TEST_POSTGRES")
pg_admin="host=127.0.0.1 port=$pg_port user=postgres dbname=postgres"
others=$("$TESSERA_TEST_PG_BIN/psql" "$pg_admin" -qAt -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" || echo 1)
if [ "$others" = "0" ]; then
  "$TESSERA_TEST_PG_BIN/psql" "$pg_admin" -qAt -c "
    SELECT format('DROP SCHEMA %I CASCADE;', nspname) FROM pg_namespace
    WHERE nspname NOT IN ('public', 'information_schema') AND nspname NOT LIKE 'pg\\_%'" \
    | PGOPTIONS="-c client_min_messages=warning" "$TESSERA_TEST_PG_BIN/psql" "$pg_admin" -qAt -v ON_ERROR_STOP=0 > /dev/null || echo "(could not drop old test schemas; continuing)"
else
  echo "(another client is connected to the test cluster: old test schemas are left for now)"
fi

echo "== build"
dotnet build Tessera.slnx -c Release -warnaserror -nologo -v q

echo "== format"
dotnet format Tessera.slnx --verify-no-changes --no-restore -v q

echo "== tests"
results=$(mktemp -d)
status=0
dotnet test Tessera.slnx -c Release --no-build --logger "trx" --results-directory "$results" -- RunConfiguration.CollectSourceInformation=false || status=$?

# The HTTP suites once more with the server on PostgreSQL (one schema per test server), so every API behaviour
# is proved on both stores, not only the storage conformance suite.
for project in tests/Tessera.Collection.Tests tests/Tessera.Profiles.Tests tests/Tessera.Audiences.Tests tests/Tessera.Activation.Tests tests/Tessera.Journeys.Tests; do
  echo "== $project on PostgreSQL"
  TESSERA_TEST_STORE=postgres dotnet test "$project" -c Release --no-build --logger "trx" --results-directory "$results/postgres" || status=$?
done

# One closing line for CI, summed over every test project's results.
python3 - "$results" <<'PY'
import sys, glob, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for f in glob.glob(sys.argv[1] + "/**/*.trx", recursive=True):
    c = ET.parse(f).getroot().find(".//{*}Counters")
    if c is None: continue
    passed += int(c.get("passed", 0)); failed += int(c.get("failed", 0)) + int(c.get("error", 0)) + int(c.get("timeout", 0))
    skipped += int(c.get("notExecuted", 0))
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
