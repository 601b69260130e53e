#!/usr/bin/env python3
"""Reads a folder written by `medgrid generate` (CSV or Parquet) with DuckDB, as an analyst
would, and checks it against its manifest.csv.

Every file the manifest lists is read with plain defaults (CSV: header=true and DuckDB's own
type detection, nothing else, so a file that needs options fails here rather than for the
reader), its row count is compared with the manifest's, and a few references between tables
are checked wherever both tables were written. Files the manifest does not list are ignored,
so the check follows the generator as tables are added.

    pip install duckdb
    python3 scripts/check-files.py OUT_DIR

Prints one line per file and per reference; exits 1 on any mismatch, 2 on bad usage.
"""

import csv
import sys
from pathlib import Path

import duckdb

# (table, column, referenced table, referenced column): every non-null value of the first
# must exist in the second.
REFERENCES = [
    ("encounters", "resident_id", "residents", "resident_id"),
    ("contracts", "resident_id", "residents", "resident_id"),
    ("contracts", "team_id", "teams", "team_id"),
    ("residents", "unit_code", "units", "unit_code"),
    ("teams", "unit_code", "units", "unit_code"),
    ("teams", "gp_id", "practitioners", "practitioner_id"),
    ("encounters", "unit_code", "units", "unit_code"),
    ("encounters", "practitioner_id", "practitioners", "practitioner_id"),
    ("encounters", "referral_id", "referrals", "referral_id"),
    ("referrals", "source_encounter_id", "encounters", "encounter_id"),
    ("referrals", "result_encounter_id", "encounters", "encounter_id"),
    ("referrals", "to_unit_code", "units", "unit_code"),
    ("follow_ups", "resident_id", "residents", "resident_id"),
    ("follow_ups", "encounter_id", "encounters", "encounter_id"),
    ("follow_ups", "team_id", "teams", "team_id"),
    ("exams", "encounter_id", "encounters", "encounter_id"),
    ("exams", "center_unit_code", "units", "unit_code"),
    ("prescriptions", "encounter_id", "encounters", "encounter_id"),
    ("claims", "encounter_id", "encounters", "encounter_id"),
    ("mpi_truth", "record_id", "mpi_records", "record_id"),
    ("mpi_truth", "resident_id", "residents", "resident_id"),
]


def sql_string(s):
    return "'" + s.replace("'", "''") + "'"


def reader(path):
    if path.suffix == ".csv":
        return f"read_csv({sql_string(str(path))}, header=true, auto_detect=true)"
    if path.suffix == ".parquet":
        return f"read_parquet({sql_string(str(path))})"
    raise ValueError(f"unknown file type: {path.name}")


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    folder = Path(argv[1])
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        print(f"FAIL  {manifest}: missing", file=sys.stderr)
        return 1
    with manifest.open(newline="", encoding="utf-8") as f:
        listed = [(row["file"], int(row["rows"])) for row in csv.DictReader(f)]

    db = duckdb.connect()
    failures = 0
    tables = set()
    for name, expected in listed:
        path = folder / name
        table = Path(name).stem
        try:
            if not path.is_file():
                raise FileNotFoundError("listed in the manifest but missing")
            # A view, not a table: every query reads the file itself, as a user's would.
            db.execute(f'CREATE VIEW "{table}" AS SELECT * FROM {reader(path)}')
            (rows,) = db.execute(f'SELECT count(*) FROM "{table}"').fetchone()
            columns = len(db.execute(f'DESCRIBE "{table}"').fetchall())
        except (duckdb.Error, OSError, ValueError) as e:
            failures += 1
            print(f"FAIL  {name}: {e}")
            continue
        tables.add(table)
        if rows == expected:
            print(f"ok    {name}: {rows} rows, {columns} columns")
        else:
            failures += 1
            print(f"FAIL  {name}: {rows} rows, the manifest says {expected}")

    checked = 0
    for child, column, parent, key in REFERENCES:
        if child not in tables or parent not in tables:
            continue
        checked += 1
        what = f"{child}.{column} -> {parent}.{key}"
        try:
            (orphans,) = db.execute(
                f'SELECT count(*) FROM "{child}" c WHERE c."{column}" IS NOT NULL '
                f'AND NOT EXISTS (SELECT 1 FROM "{parent}" p WHERE p."{key}" = c."{column}")'
            ).fetchone()
        except duckdb.Error as e:
            failures += 1
            print(f"FAIL  {what}: {e}")
            continue
        if orphans == 0:
            print(f"ok    {what}")
        else:
            failures += 1
            print(f"FAIL  {what}: {orphans} values not found")

    print(
        f"{len(listed)} files, {checked} references: "
        + ("all agree" if failures == 0 else f"{failures} problems")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
