#!/bin/sh
# Installs semgrep from PyPI into a virtual environment outside the repository, for the
# comparison in `cargo bench -p troupe-scanner --bench scanner -- --semgrep PATH`.
set -eu
venv="${HOME}/.cache/troupe-semgrep-venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --upgrade pip
"$venv/bin/pip" install semgrep
"$venv/bin/semgrep" --version
echo "run: cargo bench -p troupe-scanner --bench scanner -- --semgrep $venv/bin/semgrep"
