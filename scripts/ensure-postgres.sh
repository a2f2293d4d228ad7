#!/usr/bin/env bash
# Makes sure this machine can run the throwaway PostgreSQL clusters of the integration tests
# (tests/it/common/pg/): server binaries (initdb, pg_ctl, postgres), psql, and, when the tests
# run as root, the `postgres` OS user that initdb and the server run as.
#
# Idempotent: installs nothing when everything is there. Installs Debian's `postgresql` package
# (non-interactively) otherwise. Prints what it found or did.
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
