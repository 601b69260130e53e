-- The synthetic city's population and its care (SQLite).
-- Kept in step with ../postgres/0002_population.sql: same tables, columns and constraint names.
-- Tables and columns follow crates/sim/src/schema.rs (the `db` names) one for one; a contract
-- test compares them.
--
-- Ids are the generator's (1-based per table); `id INTEGER PRIMARY KEY` is the rowid, so rows
-- loaded in id order are appended. Money is in fen and other fixed-point values are scaled
-- integers, so sums are exact and identical on both databases. Days are 'YYYY-MM-DD' and
-- moments 'YYYY-MM-DD HH:MM:SS' (the city's local time), which sort as they read; flags are
-- stored as 0/1.
--
-- Every table carries group_id, the tenant key. References are checked immediately, which the
-- loader allows by sending each batch's tables in this file's order (referenced tables first).
-- encounter.referral_id has no foreign key: referral.source_encounter_id points the other way.

CREATE TABLE team (
    id              INTEGER PRIMARY KEY,
    group_id        INTEGER NOT NULL REFERENCES med_group(id),
    unit_id         INTEGER NOT NULL REFERENCES unit(id),
    gp_id           INTEGER NOT NULL REFERENCES practitioner(id),
    specialist_id   INTEGER NOT NULL REFERENCES practitioner(id),
    third_member_id INTEGER NOT NULL REFERENCES practitioner(id)
);

CREATE TABLE resident (
    id                    INTEGER PRIMARY KEY,
    household_id          BIGINT NOT NULL,
    citizen_id            TEXT NOT NULL,
    name                  TEXT NOT NULL,
    sex                   TEXT NOT NULL,
    birth_date            TEXT NOT NULL,
    phone                 TEXT NOT NULL,
    address               TEXT NOT NULL,
    unit_id               INTEGER NOT NULL REFERENCES unit(id),
    group_id              INTEGER NOT NULL REFERENCES med_group(id),
    grid_code             TEXT NOT NULL,
    insurance             TEXT NOT NULL,
    hypertension          BOOLEAN NOT NULL,
    diabetes              BOOLEAN NOT NULL,
    severe_mental_illness BOOLEAN NOT NULL,
    maternal_risk         TEXT
);
CREATE INDEX ix_resident_group ON resident (group_id);
-- Not unique: the patient index matches records to residents, it does not trust the number.
CREATE INDEX ix_resident_citizen ON resident (citizen_id);

CREATE TABLE contract (
    id          INTEGER PRIMARY KEY,
    resident_id INTEGER NOT NULL REFERENCES resident(id),
    group_id    INTEGER NOT NULL REFERENCES med_group(id),
    team_id     INTEGER NOT NULL REFERENCES team(id),
    package     TEXT NOT NULL,
    signed_on   TEXT NOT NULL,
    ends_on     TEXT NOT NULL
);
CREATE INDEX ix_contract_resident ON contract (resident_id);

CREATE TABLE encounter (
    id                 INTEGER PRIMARY KEY,
    resident_id        INTEGER NOT NULL REFERENCES resident(id),
    group_id           INTEGER NOT NULL REFERENCES med_group(id),
    unit_id            INTEGER REFERENCES unit(id),
    department_code    TEXT,
    practitioner_id    INTEGER REFERENCES practitioner(id),
    kind               TEXT NOT NULL,
    level              TEXT NOT NULL,
    started_at         TEXT NOT NULL,
    ended_at           TEXT NOT NULL,
    diagnosis          TEXT NOT NULL,
    diagnosis_name     TEXT NOT NULL,
    in_region          BOOLEAN NOT NULL,
    in_group           BOOLEAN NOT NULL,
    referral_id        INTEGER,
    total_fen          BIGINT NOT NULL,
    insurance_paid_fen BIGINT NOT NULL,
    self_paid_fen      BIGINT NOT NULL
);
CREATE INDEX ix_encounter_group_started ON encounter (group_id, started_at);
CREATE INDEX ix_encounter_unit_started ON encounter (unit_id, started_at);
CREATE INDEX ix_encounter_resident ON encounter (resident_id, started_at);

CREATE TABLE referral (
    id                   INTEGER PRIMARY KEY,
    resident_id          INTEGER NOT NULL REFERENCES resident(id),
    group_id             INTEGER NOT NULL REFERENCES med_group(id),
    direction            TEXT NOT NULL,
    priority             TEXT NOT NULL,
    from_unit_id         INTEGER NOT NULL REFERENCES unit(id),
    from_practitioner_id INTEGER REFERENCES practitioner(id),
    to_unit_id           INTEGER NOT NULL REFERENCES unit(id),
    to_department_code   TEXT,
    diagnosis            TEXT NOT NULL,
    requested_at         TEXT NOT NULL,
    status               TEXT NOT NULL,
    source_encounter_id  INTEGER NOT NULL REFERENCES encounter(id),
    result_encounter_id  INTEGER REFERENCES encounter(id)
);
CREATE INDEX ix_referral_group_requested ON referral (group_id, requested_at);

CREATE TABLE follow_up (
    id                  INTEGER PRIMARY KEY,
    resident_id         INTEGER NOT NULL REFERENCES resident(id),
    group_id            INTEGER NOT NULL REFERENCES med_group(id),
    program             TEXT NOT NULL,
    unit_id             INTEGER NOT NULL REFERENCES unit(id),
    team_id             INTEGER REFERENCES team(id),
    due_on              TEXT NOT NULL,
    done_on             TEXT,
    method              TEXT,
    encounter_id        INTEGER REFERENCES encounter(id),
    systolic            BIGINT,
    diastolic           BIGINT,
    fasting_glucose_x10 BIGINT,
    controlled          BOOLEAN
);
CREATE INDEX ix_follow_up_group_due ON follow_up (group_id, due_on);

CREATE TABLE exam (
    id               INTEGER PRIMARY KEY,
    encounter_id     INTEGER NOT NULL REFERENCES encounter(id),
    resident_id      INTEGER NOT NULL REFERENCES resident(id),
    group_id         INTEGER NOT NULL REFERENCES med_group(id),
    ordering_unit_id INTEGER NOT NULL REFERENCES unit(id),
    center_unit_id   INTEGER REFERENCES unit(id),
    kind             TEXT NOT NULL,
    item             TEXT NOT NULL,
    ordered_at       TEXT NOT NULL,
    reported_at      TEXT NOT NULL,
    recognised       BOOLEAN NOT NULL
);
CREATE INDEX ix_exam_group_ordered ON exam (group_id, ordered_at);

CREATE TABLE prescription (
    id           INTEGER PRIMARY KEY,
    encounter_id INTEGER NOT NULL REFERENCES encounter(id),
    resident_id  INTEGER NOT NULL REFERENCES resident(id),
    group_id     INTEGER NOT NULL REFERENCES med_group(id),
    unit_id      INTEGER REFERENCES unit(id),
    drug_code    TEXT NOT NULL,
    drug_name    TEXT NOT NULL,
    essential    BOOLEAN NOT NULL,
    days         BIGINT NOT NULL,
    amount_fen   BIGINT NOT NULL
);
CREATE INDEX ix_prescription_encounter ON prescription (encounter_id);

CREATE TABLE claim (
    id                 INTEGER PRIMARY KEY,
    encounter_id       INTEGER NOT NULL REFERENCES encounter(id),
    resident_id        INTEGER NOT NULL REFERENCES resident(id),
    group_id           INTEGER NOT NULL REFERENCES med_group(id),
    unit_id            INTEGER REFERENCES unit(id),
    fund               TEXT NOT NULL,
    kind               TEXT NOT NULL,
    level              TEXT NOT NULL,
    in_group           BOOLEAN NOT NULL,
    dip_group          TEXT,
    los_days           BIGINT,
    total_fen          BIGINT NOT NULL,
    eligible_fen       BIGINT NOT NULL,
    deductible_fen     BIGINT NOT NULL,
    insurance_paid_fen BIGINT NOT NULL,
    self_paid_fen      BIGINT NOT NULL,
    settled_on         TEXT NOT NULL
);
CREATE INDEX ix_claim_group_settled ON claim (group_id, settled_on);
