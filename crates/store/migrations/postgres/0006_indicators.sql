-- The cube behind the cockpit and the groups' own indicator targets (R11).
-- Kept in step with ../sqlite/0006_indicators.sql.

-- Every measure by unit, department ('' for the unit as a whole) and month 'YYYY-MM'. Built
-- from the facts by the analytics crate; refreshed for the units new facts touch.
CREATE TABLE indicator_cube (
    unit_id         BIGINT NOT NULL REFERENCES unit(id),
    department_code TEXT NOT NULL,
    month           TEXT NOT NULL,
    measure         TEXT NOT NULL,
    value           BIGINT NOT NULL,
    CONSTRAINT pk_indicator_cube PRIMARY KEY (unit_id, department_code, month, measure)
);
CREATE INDEX ix_indicator_cube_month ON indicator_cube (month);

-- How far the cube has read each kind of fact (the highest id seen), and the months it
-- covers. One row.
CREATE TABLE indicator_refresh (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    first_month      TEXT NOT NULL,
    last_month       TEXT NOT NULL,
    encounter_seen   BIGINT NOT NULL,
    referral_seen    BIGINT NOT NULL,
    event_seen       BIGINT NOT NULL,
    contract_seen    BIGINT NOT NULL,
    follow_up_seen   BIGINT NOT NULL,
    prescription_seen BIGINT NOT NULL,
    practice_seen    BIGINT NOT NULL,
    resident_seen    BIGINT NOT NULL,
    rebuilt_at       TIMESTAMPTZ NOT NULL,
    refreshed_at     TIMESTAMPTZ NOT NULL
);

-- A group's own target and amber line for an indicator from a month on. Rows are never
-- changed: a new setting is a new row, and the latest row for the latest month not after a
-- period's start is the one in force.
CREATE TABLE indicator_target (
    id           BIGSERIAL PRIMARY KEY,
    group_id     BIGINT NOT NULL REFERENCES med_group(id),
    indicator_id TEXT NOT NULL,
    from_month   TEXT NOT NULL,
    target_x100  BIGINT NOT NULL,
    amber_x100   BIGINT NOT NULL,
    note         TEXT,
    set_by       BIGINT REFERENCES app_user(id),
    set_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_indicator_target_group ON indicator_target (group_id, indicator_id, from_month);
