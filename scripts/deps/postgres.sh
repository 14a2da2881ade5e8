#!/usr/bin/env bash
# Sourced by test.sh (and by hand: `source scripts/deps/postgres.sh`). Installs Debian's PostgreSQL when missing,
# runs Tessera's own test cluster on 127.0.0.1:55432 (trust auth, data under /var/tmp) so it never touches a
# system cluster, and exports how to reach it:
#   TESSERA_TEST_POSTGRES  Npgsql connection string of the test cluster
#   TESSERA_TEST_PG_BIN    PostgreSQL's bin directory (initdb, pg_ctl), for tests that run a private cluster
#   TESSERA_TEST_PG_DATA   the test cluster's data directory
#   TESSERA_TEST_PG_CTL    a pg_ctl for the test cluster, run as the right user: "$TESSERA_TEST_PG_CTL restart -m fast"
# Idempotent: when the cluster already answers it only exports. Non-interactive. Does not change shell options.

tessera_pg_setup() {
  local port=55432 root=/var/tmp/tessera-pg
  local data="$root/data" bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
    echo "postgres: installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null >/dev/null && apt-get install -y -qq postgresql </dev/null >/dev/null || { echo "postgres: apt-get install postgresql failed" >&2; return 1; }
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi

  # Run PostgreSQL's tools as the postgres user when we are root (PostgreSQL refuses to run as root).
  local as=()
  if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi

  mkdir -p "$root"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$root"; fi
  cat >"$root/pg_ctl" <<SH
#!/usr/bin/env bash
# pg_ctl for Tessera's test cluster (written by scripts/deps/postgres.sh).
exec ${as[*]} "$bin/pg_ctl" -D "$data" -l "$root/server.log" -w -t 60 -o "-p $port -c listen_addresses=127.0.0.1 -k $root -c max_connections=300" "\$@"
SH
  chmod +x "$root/pg_ctl"

  if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" </dev/null; then
    if [ ! -f "$data/PG_VERSION" ]; then
      echo "postgres: creating the test cluster in $data"
      "${as[@]}" "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync </dev/null >/dev/null || { echo "postgres: initdb failed" >&2; return 1; }
    fi
    echo "postgres: starting the test cluster on 127.0.0.1:$port"
    "$root/pg_ctl" start </dev/null >/dev/null || { echo "postgres: could not start; see $root/server.log" >&2; tail -n 20 "$root/server.log" >&2; return 1; }
  fi

  export TESSERA_TEST_POSTGRES="Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres"
  export TESSERA_TEST_PG_BIN="$bin"
  export TESSERA_TEST_PG_DATA="$data"
  export TESSERA_TEST_PG_CTL="$root/pg_ctl"
}

tessera_pg_setup
