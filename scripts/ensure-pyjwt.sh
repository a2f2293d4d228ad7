#!/usr/bin/env bash
# Installs PyJWT with its cryptography backend into the test virtualenv that
# scripts/ensure-compose.sh made (target/compose-venv), for the tests that verify the tokens and
# key sets rotate-keys writes with client code nobody here wrote. Idempotent: a second run only
# checks.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/compose-venv
if [ ! -x "$venv/bin/python" ]; then
  bash scripts/ensure-compose.sh >/dev/null
fi
if ! "$venv/bin/python" -c 'import jwt, cryptography' 2>/dev/null; then
  echo "ensure-pyjwt: installing PyJWT and cryptography into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'PyJWT[crypto]'
fi
"$venv/bin/python" -c 'import jwt; from jwt.algorithms import ECAlgorithm' >/dev/null
