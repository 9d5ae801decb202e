#!/usr/bin/env bash
# The Python SDK's checks: installs the package (as a user would, not editable) with its `dev`
# extra (pytest, and ruff, mypy and the stubs they need at the exact versions pinned in
# pyproject.toml) into a virtual environment; then lints with ruff, type-checks with
# mypy --strict, and runs the tests, which start the real release binary ($AGENTVISTA_BIN,
# default /var/tmp/agentvista-target/release/agentvista; the tests that need it are skipped,
# saying why, when it is missing). The first check that fails stops the script.
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
# The package, its dependencies and the checkers, then the package again from this tree (a
# reused environment would otherwise keep an older build of the same version).
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$sdk[dev]"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --force-reinstall "$sdk"

cd "$sdk"
# Rules and settings: [tool.ruff] and [tool.mypy] in pyproject.toml. No `ruff format --check`:
# the code keeps its hand layout (e.g. a log call's arguments on one line), which the
# formatter would spread one per line.
echo "sdk/python: ruff check"
"$venv/bin/python" -m ruff check src tests
echo "sdk/python: mypy --strict"
"$venv/bin/python" -m mypy --strict src/agentvista tests
echo "sdk/python: pytest"
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
