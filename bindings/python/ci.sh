#!/usr/bin/env bash
# CI for the Python package: format and lints of the extension crate, then
# build the wheel through pip (maturin's PEP 517 backend), install it into a
# fresh virtual environment and run the pytest suite. Exits non-zero on any
# failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

echo "== bindings/python: format and lints"
cargo fmt --check
cargo clippy --locked -q -- -D warnings

# Debian's python3 ships venv separately.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
python3 --version

venv="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$venv")"' EXIT
python3 -m venv "$venv"
export PATH="$venv/bin:$PATH"
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -m pip install -q maturin numpy pytest

echo "== bindings/python: build and install the wheel"
# The dev profile builds faster than a release wheel; the numbers do not
# depend on it. maturin builds into ./target (ignored), reused by a rerun.
MATURIN_PEP517_ARGS="--profile dev" python -m pip install -q --no-build-isolation "$here"

echo "== bindings/python: pytest"
# From outside the source tree, so that `import wapo` is the installed wheel.
cd "$(dirname "$venv")"
python -m pytest -rs -q "$here/tests"
