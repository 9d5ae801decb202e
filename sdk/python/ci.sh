#!/usr/bin/env bash
# The Python SDK's checks: installs the package (as a user would, not editable) and pytest
# into a virtual environment, then runs the tests, which start the real release binary
# ($AGENTVISTA_BIN, default /var/tmp/agentvista-target/release/agentvista; the tests that
# need it are skipped, saying why, when it is missing).
#
# Run from anywhere, e.g. from the repository's root: bash sdk/python/ci.sh [pytest arguments]
# Settings: PYTHON (default python3), AGENTVISTA_SDK_VENV (default sdk/python/.venv).
set -euo pipefail

sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${AGENTVISTA_SDK_VENV:-$sdk/.venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "sdk/python: creating the virtual environment $venv"
    "$python" -m venv "$venv"
fi
# The package and its dependencies, then the package again from this tree (a reused
# environment would otherwise keep an older build of the same version).
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$sdk" pytest
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --force-reinstall "$sdk"

cd "$sdk"
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
