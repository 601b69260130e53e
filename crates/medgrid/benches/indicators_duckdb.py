"""The cube and every indicator for every unit and month, by DuckDB SQL over the synthetic
city's Parquet files: the comparison of `cargo bench -p medgrid --bench indicators`.

Usage: python indicators_duckdb.py DATA_DIR OUT_CSV PARAMS_JSON

PARAMS_JSON gives the months (`first`, `last`, as year * 12 + month - 1), the unit codes of
the lead hospitals and of primary care, the titles that are physicians, the indicators
(`id`, `numerator`, `denominator`, `factor`, `growth`) and the threads to use. The cube is
written to OUT_CSV (unit, department, month, measure, value) for the benchmark to compare
with its own; one JSON line on stdout gives the seconds taken and the indicator checksums.
The same definitions as medgrid-analytics (crates/analytics/src/cube.rs), in SQL.
"""

import json
import sys
import time

import duckdb

data, out, params_path = sys.argv[1], sys.argv[2], sys.argv[3]
with open(params_path, encoding="utf-8") as f:
    params = json.load(f)
first, last = params["first"], params["last"]

con = duckdb.connect()
con.execute(f"SET threads TO {int(params['threads'])}")
con.execute("SET preserve_insertion_order = false")


def table(name):
    return f"read_parquet('{data}/{name}.parquet')"


started = time.perf_counter()
con.execute("CREATE MACRO mi(x) AS (year(x) * 12 + month(x) - 1)")
con.execute(
    "CREATE MACRO chronic(d) AS regexp_matches(d, '^([Ii]1[0-5]|[Ee]1[0-4])')"
)
con.execute(
    "CREATE TABLE unit_kind AS SELECT unnest(?::VARCHAR[]) AS code, 'lead' AS kind "
    "UNION ALL SELECT unnest(?::VARCHAR[]), 'primary'",
    [params["lead"], params["primary"]],
)
con.execute("CREATE TABLE titles AS SELECT unnest(?::VARCHAR[]) AS title", [params["physician_titles"]])
con.execute(f"CREATE TABLE months AS SELECT range AS m FROM range({first}, {last} + 1)")
con.execute(
    f"""CREATE TABLE res AS SELECT resident_id, unit_code AS home,
        mi(birth_date) + 780 AS aged_from,
        (hypertension OR diabetes OR severe_mental_illness OR maternal_risk IS NOT NULL) AS key_condition
        FROM {table('residents')}"""
)
con.execute(
    f"""CREATE TABLE cube AS
WITH enc AS (SELECT * FROM {table('encounters')}),
visits AS (
    SELECT r.home AS u, mi(e.started_at) AS m,
        count(*) AS visits,
        count(*) FILTER (e.in_region) AS visits_in_region,
        count(*) FILTER (e.in_region AND chronic(e.diagnosis)) AS chronic_visits,
        count(*) FILTER (e.in_region AND k.kind = 'primary') AS visits_primary,
        count(*) FILTER (e.in_region AND k.kind = 'primary' AND chronic(e.diagnosis)) AS chronic_visits_primary
    FROM enc e JOIN res r USING (resident_id) LEFT JOIN unit_kind k ON k.code = e.unit_code
    WHERE e.kind <> 'inpatient' GROUP BY ALL
),
clinic AS (
    SELECT unit_code AS u, coalesce(department_code, '') AS dept, mi(started_at) AS m, count(*) AS v
    FROM enc WHERE kind <> 'inpatient' AND unit_code IS NOT NULL GROUP BY ALL
),
stays AS (
    SELECT unit_code AS u, coalesce(department_code, '') AS dept, mi(ended_at) AS m, count(*) AS discharges,
        sum(greatest(date_diff('day', started_at::DATE, ended_at::DATE), 1)) AS days
    FROM enc WHERE kind = 'inpatient' AND unit_code IS NOT NULL GROUP BY ALL
),
refs AS (
    SELECT x.from_unit_code AS u, mi(x.requested_at) AS m, count(*) AS referrals,
        count(*) FILTER (x.direction = 'up') AS up,
        count(*) FILTER (x.direction <> 'up') AS down,
        count(*) FILTER (x.direction <> 'up' AND k.kind = 'lead') AS lead_down,
        count(*) FILTER (x.direction <> 'up' AND k.kind = 'lead' AND chronic(x.diagnosis)) AS lead_chronic_down
    FROM {table('referrals')} x LEFT JOIN unit_kind k ON k.code = x.from_unit_code GROUP BY ALL
),
rx AS (
    SELECT p.unit_code AS u, mi(e.started_at) AS m, count(*) AS lines, count(*) FILTER (p.essential) AS essential
    FROM {table('prescriptions')} p JOIN enc e USING (encounter_id)
    WHERE p.unit_code IS NOT NULL GROUP BY ALL
),
fu AS (
    SELECT unit_code AS u, mi(due_on) AS m, count(*) AS due, count(done_on) AS done
    FROM {table('follow_ups')} GROUP BY ALL
),
physicians AS (
    SELECT p.unit_code AS u, count(*) AS physicians, count(*) FILTER (d.name LIKE '%中医%') AS tcm
    FROM {table('practitioners')} p JOIN titles t ON t.title = p.title
    LEFT JOIN {table('departments')} d ON d.unit_code = p.unit_code AND d.department_code = p.department_code
    GROUP BY ALL
),
key_from AS (
    SELECT home AS u, CASE WHEN key_condition THEN -1 ELSE aged_from END AS k, count(*) AS n FROM res GROUP BY ALL
),
contracted AS (
    SELECT DISTINCT c.resident_id, unnest(range(greatest(mi(c.signed_on), {first}), least(mi(c.ends_on) - 1, {last}) + 1)) AS m
    FROM {table('contracts')} c
),
contracted_counts AS (
    SELECT r.home AS u, c.m, count(*) AS contracted,
        count(*) FILTER (r.key_condition OR r.aged_from <= c.m) AS key_contracted
    FROM contracted c JOIN res r USING (resident_id) GROUP BY ALL
),
due AS (
    SELECT resident_id, program, mi(due_on) AS dm, count(*) AS due, count(done_on) AS done
    FROM {table('follow_ups')} WHERE program IN ('hypertension', 'diabetes') GROUP BY ALL
),
windows AS (
    SELECT resident_id, program, unnest(range(greatest(dm, {first}), least(dm + 11, {last}) + 1)) AS m, due, done
    FROM due WHERE dm + 11 >= {first} AND dm <= {last}
),
managed AS (
    SELECT r.home AS u, w.m, w.program, count(*) AS managed, count(*) FILTER (w.done = w.due) AS standard
    FROM (SELECT resident_id, program, m, sum(due) AS due, sum(done) AS done FROM windows GROUP BY ALL) w
    JOIN res r USING (resident_id) GROUP BY ALL
),
cells AS (
    UNPIVOT visits ON visits, visits_in_region, chronic_visits, visits_primary, chronic_visits_primary
        INTO NAME k VALUE v
),
all_cells AS (
    SELECT u, '' AS d, m, k, v FROM cells
    UNION ALL SELECT u, '', m, 'clinic_visits', sum(v) FROM clinic GROUP BY ALL
    UNION ALL SELECT u, dept, m, 'clinic_visits', v FROM clinic WHERE dept <> ''
    UNION ALL SELECT u, '', m, 'discharges', sum(discharges) FROM stays GROUP BY ALL
    UNION ALL SELECT u, dept, m, 'discharges', discharges FROM stays WHERE dept <> ''
    UNION ALL SELECT u, '', m, 'inpatient_days', sum(days) FROM stays GROUP BY ALL
    UNION ALL SELECT u, dept, m, 'inpatient_days', days FROM stays WHERE dept <> ''
    UNION ALL SELECT u, '', m, 'referrals', referrals FROM refs
    UNION ALL SELECT u, '', m, 'referrals_up', up FROM refs
    UNION ALL SELECT u, '', m, 'referrals_down', down FROM refs
    UNION ALL SELECT u, '', m, 'lead_referrals_down', lead_down FROM refs
    UNION ALL SELECT u, '', m, 'lead_chronic_referrals_down', lead_chronic_down FROM refs
    UNION ALL SELECT u, '', m, 'rx_lines', lines FROM rx
    UNION ALL SELECT u, '', m, 'rx_essential', essential FROM rx
    UNION ALL SELECT u, '', m, 'follow_ups_due', due FROM fu
    UNION ALL SELECT u, '', m, 'follow_ups_done', done FROM fu
    UNION ALL SELECT p.u, '', mo.m, 'physicians', physicians FROM physicians p, months mo
    UNION ALL SELECT p.u, '', mo.m, 'tcm_physicians', tcm FROM physicians p, months mo
    UNION ALL SELECT home, '', mo.m, 'residents', count(*) FROM res, months mo GROUP BY ALL
    UNION ALL SELECT u, '', mo.m, 'key_residents', sum(n) FROM key_from JOIN months mo ON k <= mo.m GROUP BY ALL
    UNION ALL SELECT u, '', m, 'contracted', contracted FROM contracted_counts
    UNION ALL SELECT u, '', m, 'key_contracted', key_contracted FROM contracted_counts
    UNION ALL SELECT u, '', m, program || '_managed', managed FROM managed
    UNION ALL SELECT u, '', m, program || '_standard', standard FROM managed
)
SELECT u, d, m, k, sum(v)::BIGINT AS v FROM all_cells
WHERE m BETWEEN {first} AND {last} GROUP BY ALL HAVING sum(v) <> 0"""
)
cube_seconds = time.perf_counter() - started

con.execute(
    "CREATE TABLE ind AS SELECT * FROM (SELECT unnest(?::VARCHAR[]) AS id, unnest(?::VARCHAR[]) AS num, "
    "unnest(?::VARCHAR[]) AS den, unnest(?::BIGINT[]) AS factor, unnest(?::BOOLEAN[]) AS growth)",
    [
        [i["id"] for i in params["indicators"]],
        [i["numerator"] for i in params["indicators"]],
        [i["denominator"] for i in params["indicators"]],
        [i["factor"] for i in params["indicators"]],
        [i["growth"] for i in params["indicators"]],
    ],
)
values = con.execute(
    f"""CREATE TABLE ind_values AS
WITH grid AS (SELECT u, mo.m FROM (SELECT DISTINCT unit_code AS u FROM {table('units')}) units, months mo),
flat AS (SELECT u, m, k, v FROM cube WHERE d = ''),
raw AS (
    SELECT i.id, g.u, g.m, i.factor, i.growth,
        coalesce(n.v, 0) AS now,
        CASE WHEN NOT i.growth THEN coalesce(dn.v, 0)
             WHEN g.m - 12 >= {first} THEN coalesce(dn.v, 0) ELSE 0 END AS den
    FROM grid g CROSS JOIN ind i
    LEFT JOIN flat n ON n.u = g.u AND n.m = g.m AND n.k = i.num
    LEFT JOIN flat dn ON dn.u = g.u AND dn.m = g.m - CASE WHEN i.growth THEN 12 ELSE 0 END AND dn.k = i.den
)
SELECT id, u, m, CASE WHEN growth THEN now - den ELSE now END AS numerator, den AS denominator,
    CASE WHEN den <> 0 THEN (CASE WHEN growth THEN now - den ELSE now END) * factor::DOUBLE / den END AS value
FROM raw"""
)
rows, numerators, denominators = con.execute(
    "SELECT count(*), sum(numerator)::BIGINT, sum(denominator)::BIGINT FROM ind_values"
).fetchone()
total_seconds = time.perf_counter() - started

con.execute(f"COPY (SELECT u, d, m, k, v FROM cube) TO '{out}' (HEADER false)")
print(
    json.dumps(
        {
            "cube_seconds": cube_seconds,
            "seconds": total_seconds,
            "indicator_values": rows,
            "numerators": numerators,
            "denominators": denominators,
            "cells": con.execute("SELECT count(*) FROM cube").fetchone()[0],
        }
    )
)
