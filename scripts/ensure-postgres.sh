#!/usr/bin/env bash
# Makes sure this machine can run the throwaway PostgreSQL clusters of the integration tests
# (tests/it/common/pg/): server binaries (initdb, pg_ctl, postgres), psql, the pgaudit extension
# for the server's major version (Supabase's images preload it; the leak tests do too), pgbouncer
# (the rotation's pooler test), and,
# when the tests run as root, the `postgres` OS user that initdb and the server run as.
#
# Idempotent: installs nothing when everything is there. Installs Debian's `postgresql` and
# `postgresql-<major>-pgaudit` packages (non-interactively) otherwise. Prints what it found or did.
set -euo pipefail

log() { printf 'ensure-postgres: %s\n' "$*"; }

os_user="${PMOVES_TEST_PG_OS_USER:-postgres}"

# Same search order as the harness: PMOVES_TEST_PG_BIN, the highest /usr/lib/postgresql/N/bin,
# pg_config --bindir, then PATH.
find_bindir() {
  if [ -n "${PMOVES_TEST_PG_BIN:-}" ]; then
    [ -x "$PMOVES_TEST_PG_BIN/initdb" ] && { printf '%s\n' "$PMOVES_TEST_PG_BIN"; return 0; }
    return 1
  fi
  local d best="" best_v=-1 v
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] || continue
    v="${d#/usr/lib/postgresql/}"
    v="${v%/bin}"
    case "$v" in '' | *[!0-9]*) continue ;; esac
    if [ "$v" -gt "$best_v" ]; then best_v="$v"; best="$d"; fi
  done
  [ -n "$best" ] && { printf '%s\n' "$best"; return 0; }
  if command -v pg_config >/dev/null 2>&1; then
    d="$(pg_config --bindir 2>/dev/null || true)"
    [ -n "$d" ] && [ -x "$d/initdb" ] && { printf '%s\n' "$d"; return 0; }
  fi
  if command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return 0
  fi
  return 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

apt_install() {
  if ! is_root; then
    log "missing: $*; run as root: apt-get install -y $*"
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    log "missing: $*, and apt-get is not available: install PostgreSQL server binaries and set PMOVES_TEST_PG_BIN"
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  log "installing $* (apt-get)"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if bindir="$(find_bindir)"; then
  log "server binaries: $bindir ($("$bindir/postgres" --version 2>/dev/null || echo 'version unknown'))"
else
  if [ -n "${PMOVES_TEST_PG_BIN:-}" ]; then
    log "PMOVES_TEST_PG_BIN=$PMOVES_TEST_PG_BIN has no initdb"
    exit 1
  fi
  apt_install postgresql postgresql-client
  bindir="$(find_bindir)" || { log "postgresql installed but no initdb found"; exit 1; }
  log "installed server binaries: $bindir ($("$bindir/postgres" --version))"
fi

# pgaudit for the same major version as the server: its library and its extension files.
major="$("$bindir/postgres" --version 2>/dev/null | sed -n 's/.* \([0-9][0-9]*\)\.[0-9].*/\1/p' | head -n 1)"
pgaudit_present() {
  local libdir sharedir
  if [ -x "$bindir/pg_config" ]; then
    libdir="$("$bindir/pg_config" --pkglibdir 2>/dev/null || true)"
    sharedir="$("$bindir/pg_config" --sharedir 2>/dev/null || true)"
  fi
  libdir="${libdir:-$(dirname "$bindir")/lib}"
  sharedir="${sharedir:-/usr/share/postgresql/$major}"
  [ -f "$libdir/pgaudit.so" ] && [ -f "$sharedir/extension/pgaudit.control" ]
}
if [ -z "$major" ]; then
  log "cannot tell the server's major version from $bindir/postgres; pgaudit not checked"
elif pgaudit_present; then
  log "pgaudit: present for PostgreSQL $major"
else
  apt_install "postgresql-$major-pgaudit"
  pgaudit_present || { log "postgresql-$major-pgaudit installed but pgaudit.so / pgaudit.control not found"; exit 1; }
  log "pgaudit: installed postgresql-$major-pgaudit"
fi

# pgbouncer: the rotation's tests run a transaction-mode pooler in front of a cluster (a pooled
# server connection must come back to the next client with its normal settings).
if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
  log "pgbouncer: $(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
else
  apt_install pgbouncer
  log "pgbouncer: installed"
fi

if command -v psql >/dev/null 2>&1; then
  log "psql: $(command -v psql)"
elif [ -x "$bindir/psql" ]; then
  log "psql: $bindir/psql (not on PATH; the harness finds it there)"
else
  apt_install postgresql-client
  log "psql: $(command -v psql)"
fi

if is_root; then
  if id -u "$os_user" >/dev/null 2>&1; then
    log "OS user $os_user exists (uid $(id -u "$os_user"))"
  else
    log "creating the OS user $os_user (initdb refuses to run as root)"
    useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
      --shell /bin/sh "$os_user"
  fi
  if ! command -v runuser >/dev/null 2>&1 && [ ! -x /usr/sbin/runuser ] && [ ! -x /sbin/runuser ]; then
    log "note: runuser not found; the harness falls back to su"
  fi
fi

log "ok"
