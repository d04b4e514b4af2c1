#!/usr/bin/env bash
# The whole test suite, from a fresh machine: install what is missing, lint, type-check, test.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not cluster" -x; -n 0: one process).
# Two processes: one runs the tests that need the machine's one node, one at a time (tests/conftest.py's
# xdist group "host", mostly waiting on pods), the other the CPU-bound rest beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --cluster
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff" && ruff check . && ruff format --check .
echo "== mypy" && mypy
echo "== pytest"
exec pytest -n 2 --dist loadgroup "$@"
