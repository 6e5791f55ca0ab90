#!/usr/bin/env bash
# The test command: sets up what is missing, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-neutron.sh   # Neutron in .venv-neutron, for the driver's root tests
echo "==> ruff (lint) and mypy (types of the pure core)"
.venv/bin/ruff check --quiet .
.venv/bin/mypy --no-error-summary
exec .venv/bin/python -m pytest -n "${SG_OFCTL_TEST_WORKERS:-2}" "$@"
