-- (PostgreSQL; kept in step with ../sqlite/0010_patient_index.sql.)
-- The master patient index (R2.1): persons are residents; every unit's own record of a person
-- is a patient_record linked to one of them. Matching fills the links; reviewers settle the
-- doubtful ones; merges of two residents are events that can be undone, row by row.

-- A resident folded into another by a merge keeps its id (old links and FHIR reads still
-- resolve) and points at the one it was merged into.
ALTER TABLE resident ADD COLUMN merged_into_id BIGINT REFERENCES resident(id);
-- Candidate search on arrival: the blocking keys of the registered demographics.
CREATE INDEX ix_resident_group_birth ON resident (group_id, birth_date);
CREATE INDEX ix_resident_group_phone ON resident (group_id, phone);
CREATE INDEX ix_resident_group_name ON resident (group_id, name);

CREATE TABLE patient_record (
    id              BIGSERIAL PRIMARY KEY,
    group_id        BIGINT NOT NULL REFERENCES med_group(id),
    unit_id         BIGINT NOT NULL REFERENCES unit(id),
    -- The unit's own number for the person, and the system that issued it.
    local_record_no TEXT NOT NULL,
    issuer          TEXT NOT NULL,
    -- The identity document as received; an invalid citizen ID is kept but never proof.
    id_type         TEXT NOT NULL,
    id_number       TEXT NOT NULL,
    id_valid        BOOLEAN NOT NULL,
    -- The 18-digit form of a valid citizen ID (15-digit ones upgraded), else NULL.
    citizen_id      TEXT,
    insurance_card  TEXT NOT NULL,
    name            TEXT NOT NULL,
    sex             TEXT NOT NULL,
    birth_date      DATE NOT NULL,
    phone           TEXT NOT NULL,
    address         TEXT NOT NULL,
    resident_id     BIGINT NOT NULL REFERENCES resident(id),
    -- matched | created | review | manual
    link_state      TEXT NOT NULL,
    probability     DOUBLE PRECISION,
    model_version   TEXT NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    CONSTRAINT uq_patient_record_local UNIQUE (unit_id, local_record_no)
);
CREATE INDEX ix_patient_record_resident ON patient_record (resident_id);
CREATE INDEX ix_patient_record_citizen ON patient_record (group_id, citizen_id);
CREATE INDEX ix_patient_record_birth ON patient_record (group_id, birth_date);
CREATE INDEX ix_patient_record_phone ON patient_record (group_id, phone);
CREATE INDEX ix_patient_record_name ON patient_record (group_id, name);

-- A doubt about one record and one candidate person, and how a person settled it. Settled
-- rows are kept: a later run respects "same" and "not same".
CREATE TABLE match_review (
    id           BIGSERIAL PRIMARY KEY,
    group_id     BIGINT NOT NULL REFERENCES med_group(id),
    record_id    BIGINT NOT NULL REFERENCES patient_record(id),
    resident_id  BIGINT NOT NULL REFERENCES resident(id),
    probability  DOUBLE PRECISION NOT NULL,
    -- open | same | not_same | withdrawn
    status       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    decided_at   TIMESTAMPTZ,
    decided_by   TEXT,
    CONSTRAINT uq_match_review_pair UNIQUE (record_id, resident_id)
);
CREATE INDEX ix_match_review_group_status ON match_review (group_id, status, id);

-- Merging moves every row of the merged resident to the kept one; the rows moved are listed so
-- that an unmerge moves exactly those back, and nothing added since.
CREATE TABLE resident_merge (
    id           BIGSERIAL PRIMARY KEY,
    group_id     BIGINT NOT NULL REFERENCES med_group(id),
    kept_id      BIGINT NOT NULL REFERENCES resident(id),
    merged_id    BIGINT NOT NULL REFERENCES resident(id),
    reason       TEXT NOT NULL,
    review_id    BIGINT REFERENCES match_review(id),
    merged_at    TIMESTAMPTZ NOT NULL,
    merged_by    TEXT NOT NULL,
    unmerged_at  TIMESTAMPTZ,
    unmerged_by  TEXT
);
CREATE INDEX ix_resident_merge_kept ON resident_merge (kept_id);
CREATE INDEX ix_resident_merge_merged ON resident_merge (merged_id);

CREATE TABLE resident_merge_row (
    merge_id   BIGINT NOT NULL REFERENCES resident_merge(id),
    table_name TEXT NOT NULL,
    row_id     BIGINT NOT NULL,
    PRIMARY KEY (merge_id, table_name, row_id)
);
